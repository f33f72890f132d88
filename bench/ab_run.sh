#!/usr/bin/env bash
# Interleaved A/B of `autodp run` on the reference recipe at one thread: two source trees, the
# same data, fresh processes, CPU time (user + system) and peak RSS of each, load at each start.
#
#   bench/ab_run.sh BASE_TREE NEW_TREE DATA.jsonl [ROUNDS]     # e.g. a `git archive` of main, and .
#
# Both trees are byte-compiled and their operator manifests written first (an installed autodp's
# state after its first use), so start-up compares code, not bytecode. Outputs go to a temporary
# folder; the kept rows of the two trees are compared byte for byte at the end.
set -euo pipefail
BASE="$(realpath "$1")"; NEW="$(realpath "$2")"; DATA="$(realpath "$3")"; ROUNDS="${4:-3}"
AUTODP="$(dirname "$(command -v python)")/autodp"
[ -x "$AUTODP" ] || { echo "error: no autodp next to $(command -v python)" >&2; exit 2; }
OUT="$(mktemp -d)"; CWD="$(mktemp -d)"  # an untouched working folder: it is on sys.path, its mtime in the manifest
trap 'rm -rf "$OUT" "$CWD"' EXIT
for tree in "$BASE" "$NEW"; do
  python -m compileall -q "$tree/autodp_dsl" "$tree/stdlib_ops" "$tree/autodp_backends" >/dev/null
  (cd "$CWD" && PYTHONPATH="$tree" "$AUTODP" lint "$tree/strategies/reference-recipe.dp" >/dev/null)
done
for r in $(seq "$ROUNDS"); do
  for tree in "$BASE" "$NEW"; do
    tag=$([ "$tree" = "$BASE" ] && echo base || echo new)
    load=$(cut -d' ' -f1 /proc/loadavg)
    (cd "$CWD" && /usr/bin/time -f "$tag round $r: %e s wall, %U user + %S sys, %M KB peak RSS, load $load" \
      env PYTHONPATH="$tree" POLARS_MAX_THREADS=1 "$AUTODP" run "$tree/strategies/reference-recipe.dp" "$DATA" \
      -o "$OUT/$tag.jsonl" --no-cache --quiet --force)
  done
done
cmp -s "$OUT/base.jsonl" "$OUT/new.jsonl" && echo "kept rows: identical ($(wc -l < "$OUT/new.jsonl") rows)" || echo "kept rows: DIFFER"
