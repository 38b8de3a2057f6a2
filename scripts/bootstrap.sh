#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the locked requirements and churnml into it.
# Idempotent: does nothing when requirements.lock, pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${CHURNML_PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "churnml needs Python 3.11: install it, or set CHURNML_PYTHON to its path" >&2
    exit 2
fi

stamp=".venv/.installed-$(cat requirements.lock pyproject.toml "$0" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setting up .venv from requirements.lock (first run only)..." >&2
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
    # Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI), every
    # command would otherwise compile its ~2,500 imported modules again (~6 s).
    .venv/bin/uv pip install --quiet --python .venv/bin/python -r requirements.lock
    .venv/bin/python -m compileall -q -j 0 .venv/lib/python3.11/site-packages >/dev/null || true
    .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
    rm -f .venv/.installed-*
    touch "$stamp"
fi
