#!/usr/bin/env bash
# Install everything and run GridAid with demo data on the embedded default
# (SQLite under ./var and a child Redis on a unix socket). Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=$(bash scripts/bootstrap.sh)
"$UV" sync --frozen
bash scripts/build_pwa.sh
exec "$UV" run --frozen gridaid run --demo "$@"
