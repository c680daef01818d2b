#!/usr/bin/env bash
# Build the field app into pwa/dist with the locked npm packages (package-lock.json).
# `npm ci` runs only when node_modules is missing or the lock file changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../pwa"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Node.js and npm (Debian) to build the field app ..." >&2
    apt-get update -qq >&2 && apt-get install -y -qq nodejs npm >&2
  else
    echo "The field app (pwa/) needs Node.js >= 18 and npm to build. On Debian/Ubuntu: sudo apt-get install nodejs npm" >&2
    exit 1
  fi
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "The field app needs Node.js >= 18 to build; found $(node --version)." >&2
  exit 1
fi

stamp=node_modules/.gridaid-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "Installing the field app's npm packages (npm ci) ..." >&2
  npm ci --no-audit --no-fund >&2
  echo "$want" >"$stamp"
fi
npm run --silent build >&2
