#!/usr/bin/env bash
# The test suite (CI runs exactly this). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}
exec python -m pytest -q -m "not slow and not gpu" "$@"
