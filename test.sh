#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, then pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
# Debian's chromium and postgresql for the tests that drive them (they fail, clearly, without).
scripts/install-test-tools.sh || echo "test.sh: test tools missing: the browser and PostgreSQL tests will fail" >&2
exec .venv/bin/python -m pytest "$@"
