#!/usr/bin/env bash
# The main job: an automatic search on the example data shipped in the repo, fully offline
# (built-in proposer, a small model trained locally, the likelihood judge). Extra arguments go
# to `autodp search`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec autodp search examples/medquad_sample.jsonl --out runs/example --eval-workers 2 "$@"
