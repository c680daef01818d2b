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
  env "$@" "$UV" run --frozen pytest --junitxml="$REPORTS/$name.xml" "${PYTEST_ARGS[@]}" "${SUITE_ARGS[@]}"
  local code=$?
  # 5 means no tests were collected: that is a broken suite here, not a pass.
  if [ $code -ne 0 ]; then status=1; fi
}

PYTEST_ARGS=("$@")
echo "=== lint and types ===" >&2
"$UV" run --frozen ruff check --no-cache backend geo jobs tests scripts bench || status=1
"$UV" run --frozen ruff format --check backend geo jobs tests scripts || status=1
"$UV" run --frozen mypy backend geo jobs || status=1

# The field app: build pwa/dist (the server serves it; the PWA tests need it), then its JS unit tests.
echo "=== field app (pwa/) build and unit tests ===" >&2
if bash scripts/build_pwa.sh; then
  (cd pwa && npm test --silent) || status=1
  (cd pwa && node scripts/size.mjs) || status=1
else
  echo "ERROR: the field app did not build (scripts/build_pwa.sh)." >&2
  status=1
fi

# Browser tests (tests/e2e, marker "browser") drive Debian's Chromium, never a downloaded one.
echo "=== browser for the e2e tests ===" >&2
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium >&2
fi
# The app speaks Chinese first: without a CJK font the screenshots show empty boxes.
if [ -z "$(fc-list :lang=zh 2>/dev/null)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -qq fonts-wqy-zenhei >&2 || echo "warning: no CJK font; screenshots will show boxes" >&2
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "ERROR: /usr/bin/chromium is missing (as root: apt-get install -y chromium); the browser tests will fail." >&2
  status=1
fi

# Browser tests drive Playwright's sync API, which cannot share a process with the async tests'
# event loop: they run in a pytest run of their own, once, on PostgreSQL when there is one.
SUITE_ARGS=(-m "not browser")
browser_env=(GRIDAID_TEST_DB=sqlite)
if answers 127.0.0.1 5432; then
  redis_env=()
  if answers 127.0.0.1 6379; then redis_env=(GRIDAID_TEST_REDIS=redis://127.0.0.1:6379/9); fi
  run_suite postgres GRIDAID_TEST_DB=postgres "${redis_env[@]}"
  browser_env=(GRIDAID_TEST_DB=postgres "${redis_env[@]}")
else
  echo "No PostgreSQL on 127.0.0.1:5432: running on the embedded SQLite only." >&2
fi
run_suite sqlite GRIDAID_TEST_DB=sqlite
SUITE_ARGS=(-m browser tests/e2e)
run_suite browser "${browser_env[@]}"

"$UV" run --frozen python scripts/junit_total.py "$REPORTS"/*.xml || status=1
rm -rf "$REPORTS"
exit $status
