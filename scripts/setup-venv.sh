#!/usr/bin/env bash
# Create .venv/ at the repository root with Python >= 3.12 and install dia_pipe with pinned dependencies.
# Idempotent: a venv whose stamp matches pyproject.toml and the constraints is left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
stamp=.venv/.dia_pipe_installed
want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
py=$(scripts/find-python.sh)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then
    rm -rf .venv
    echo "dia_pipe: creating .venv with $py" >&2
    "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "dia_pipe: installing dependencies (pinned in requirements/constraints.txt)" >&2
.venv/bin/python -m pip install --quiet -c requirements/constraints.txt -e ".[test]"
echo "$want" > "$stamp"
