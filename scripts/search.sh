#!/usr/bin/env bash
# The main job: an automatic search on the example data shipped in the repo, fully offline
# (built-in proposer, a small model trained locally, the likelihood judge). Extra arguments go
# to `autodp search` (a later --rounds or --race-finetunes overrides the ones here).
# Two rounds and two racing fine-tunes per round, not the defaults' 3 and 4, so that the job fits in
# 12 minutes with its installation on 2 cores (issue 15): the noise band, the placebo rule and the
# verdict (3 replicates on fresh seeds, with a placebo arm) keep their defaults; the third round of
# the run before added one new output, its other proposals repeated earlier ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec autodp search examples/medquad_sample.jsonl --out runs/example --eval-workers 2 --rounds 2 --race-finetunes 2 "$@"
