#!/usr/bin/env bash
# Run the test suite in .venv (set up by scripts/setup-venv.sh). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/python -m pytest -q --durations=15 "$@"
