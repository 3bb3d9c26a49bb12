#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. The report tests render the
# page in a real browser: Debian's chromium is installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the report tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's 'chromium' package (the report tests need it)" >&2
    exit 1
  fi
fi
.venv/bin/python -m pytest -q "$@"
