#!/usr/bin/env bash
# Install everything and run the whole test suite: once on PostgreSQL (when one answers on
# 127.0.0.1:5432) and once on the embedded default (SQLite + a child Redis), never skipping.
set -uo pipefail
cd "$(dirname "$0")/.."
UV=$(bash scripts/bootstrap.sh) || exit 1
"$UV" sync --frozen || exit 1

answers() {  # host port: is something listening?
  "$UV" run --frozen python - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

REPORTS=$(mktemp -d)
status=0
run_suite() {  # name, then environment assignments
  local name=$1; shift
  echo "=== test suite on $name ===" >&2
  env "$@" "$UV" run --frozen pytest --junitxml="$REPORTS/$name.xml" "${PYTEST_ARGS[@]}"
  local code=$?
  # 5 means no tests were collected: that is a broken suite here, not a pass.
  if [ $code -ne 0 ]; then status=1; fi
}

PYTEST_ARGS=("$@")
echo "=== lint and types ===" >&2
"$UV" run --frozen ruff check --no-cache backend geo jobs tests scripts bench || status=1
"$UV" run --frozen ruff format --check backend geo jobs tests scripts || status=1
"$UV" run --frozen mypy backend geo jobs || status=1

if answers 127.0.0.1 5432; then
  redis_env=()
  if answers 127.0.0.1 6379; then redis_env=(GRIDAID_TEST_REDIS=redis://127.0.0.1:6379/9); fi
  run_suite postgres GRIDAID_TEST_DB=postgres "${redis_env[@]}"
else
  echo "No PostgreSQL on 127.0.0.1:5432: running on the embedded SQLite only." >&2
fi
run_suite sqlite GRIDAID_TEST_DB=sqlite

"$UV" run --frozen python scripts/junit_total.py "$REPORTS"/*.xml || status=1
rm -rf "$REPORTS"
exit $status
