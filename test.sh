#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, then pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
