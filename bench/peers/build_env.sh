#!/usr/bin/env bash
# Build the bench-only environment of the peers autodp is timed against, outside the project's venv.
#
#   bench/peers/build_env.sh [VENV]      # default: ${AUTODP_BENCH_VENV:-~/.cache/autodp-bench/dj-venv}
#
# Data-Juicer 1.6.1 (and datatrove, for its MinHash stage). torch==2.13.0 goes in first: otherwise
# pip resolves a CUDA torch plus gigabytes of nvidia wheels, and Data-Juicer's first run installs ray
# and torch by itself (shared/ENVIRONMENT.md). Idempotent: a step whose package is present is skipped.
# About 3 minutes from nothing. Needs only PyPI.
set -euo pipefail
VENV="${1:-${AUTODP_BENCH_VENV:-$HOME/.cache/autodp-bench/dj-venv}}"
PY="$VENV/bin/python"

have() { "$PY" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1') == '$2' else 1)" 2>/dev/null; }
has() { "$PY" -c "import importlib.metadata as m; m.version('$1')" 2>/dev/null; }

[ -x "$PY" ] || { echo "creating $VENV"; python3 -m venv "$VENV"; }
"$PY" -m pip --version >/dev/null
have torch 2.13.0 || "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0
if ! { have py-data-juicer 1.6.1 && has aiohttp && has selectolax && has scipy && has ray; }; then
  "$PY" -m pip install -q --disable-pip-version-check "py-data-juicer==1.6.1" aiohttp selectolax scipy ray "torch==2.13.0"
fi
# datatrove is optional: the bench reports plainly when it is missing or cannot run offline. Its
# MinHash stage also needs what its "processing" extra would bring in part: tokenizers (imported by
# the dedup package), orjson (JsonlReader), spacy (its English word tokenizer; a blank model, no
# download) and xxhash below 4 (4.x refuses the str its hash function passes).
if ! { has datatrove && has tokenizers && has spacy && has orjson && has xxhash; }; then
  "$PY" -m pip install -q --disable-pip-version-check datatrove tokenizers spacy orjson "xxhash<4" "torch==2.13.0" \
    || echo "warning: datatrove did not install into $VENV; bench_peers.py reports its MinHash stage as not measured" >&2
fi
[ -x "$VENV/bin/dj-process" ] || { echo "error: $VENV/bin/dj-process is missing after the install" >&2; exit 1; }
echo "ready: $VENV ($("$PY" -c 'import importlib.metadata as m; print("py-data-juicer", m.version("py-data-juicer"), "torch", m.version("torch"))'))"
