#!/usr/bin/env bash
# The main job on the embedded defaults: set up .venv if needed, then `churnml run`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
exec .venv/bin/churnml run "$@"
