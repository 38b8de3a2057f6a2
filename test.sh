#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, then pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
# Debian's chromium for tests/integration/test_page_browser.py (which fails, clearly, without it).
scripts/install-browser.sh || echo "test.sh: no browser: the page's browser test will fail" >&2
exec .venv/bin/python -m pytest "$@"
