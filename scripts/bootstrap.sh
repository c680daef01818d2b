#!/usr/bin/env bash
# Make sure `uv` is available, from PyPI, on a machine that has only Python 3.11+ and git.
# Prints the path of the uv binary on stdout (everything else goes to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v uv >/dev/null 2>&1; then
  command -v uv
  exit 0
fi
TOOLS=".tools"
if [ -x "$TOOLS/bin/uv" ]; then
  echo "$TOOLS/bin/uv"
  exit 0
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "GridAid needs Python 3.11 or newer as '$PYTHON' (set PYTHON=... to choose another)." >&2
  exit 1
fi

# Debian ships python3 without venv/ensurepip unless python3-venv is installed.
if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing python3-venv (Debian) ..." >&2
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
  else
    echo "Python's venv module is missing. On Debian/Ubuntu: sudo apt-get install python3-venv" >&2
    exit 1
  fi
fi

echo "Installing uv from PyPI into $TOOLS/ ..." >&2
"$PYTHON" -m venv "$TOOLS" >&2
"$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check uv >&2
echo "$TOOLS/bin/uv"
