#!/usr/bin/env bash
# The wheel as a user gets it: build it, install it (not editable) into a fresh venv and run, from
# outside the checkout, lint (a syntax error gives a located diagnostic), compile, run, and a smoke
# search whose offline proposer seeds from the curated strategies shipped in the wheel.
#
# The fresh venv gets the dependencies from the CI venv (.venv, or $AUTODP_CI_VENV) without copying
# or downloading them: a .pth names a folder of links to everything in that venv's site-packages
# except the editable autodp (its finder, its .pth and its dist-info), so only the wheel's autodp is
# importable and only its entry points are seen.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
ci_venv="${AUTODP_CI_VENV:-$repo/.venv}"
ci_py="$ci_venv/bin/python"
[ -x "$ci_py" ] || { echo "error: no CI venv at $ci_venv (run scripts/setup.sh)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/autodp-wheel-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() { echo "wheel smoke: FAILED: $*" >&2; exit 1; }

# 1. the wheel, built from a copy of the checkout's files (tracked and new, not the ignored ones), so
# that setuptools' build/ folder neither lands in the checkout nor feeds stale modules into the
# wheel. --no-deps: only autodp; the CI venv's setuptools when it has one, else pip fetches it.
mkdir "$work/src"
git -C "$repo" ls-files -z --cached --others --exclude-standard \
  | (cd "$repo" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$work/src"
isolation=()
"$ci_py" -c 'import setuptools' 2>/dev/null && isolation=(--no-build-isolation)
"$ci_py" -m pip wheel "$work/src" --no-deps "${isolation[@]}" -q -w "$work/dist" >/dev/null
wheel=$(ls "$work"/dist/autodp-*.whl)

# 2. a fresh venv that sees the CI venv's dependencies but not its editable autodp
"$ci_py" -m venv --without-pip "$work/venv"
site_ci=$("$ci_py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site_new=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir "$work/deps"
for entry in "$site_ci"/*; do
  case "$(basename "$entry")" in
    __editable__*autodp* | autodp-*.dist-info | autodp.egg-link | autodp_backends | autodp_dsl | stdlib_ops | autodp_eval | autodp_search) ;;
    *) ln -s "$entry" "$work/deps/" ;;
  esac
done
echo "$work/deps" > "$site_new/autodp-ci-deps.pth"
"$ci_py" -m pip --python "$work/venv/bin/python" install -q --no-deps --no-index "$wheel" >/dev/null
autodp="$work/venv/bin/autodp"

# 3. everything from outside the checkout, with the caches in the scratch folder
cd "$work"
export HOME="$work/home" XDG_CACHE_HOME="$work/cache" PYTHONPATH="" AUTODP_CACHE_DIR="$work/cache/autodp"
mkdir -p "$HOME"
loc=$("$work/venv/bin/python" -c 'import autodp_backends, autodp_dsl, autodp_search; print(autodp_backends.__file__, autodp_dsl.__file__, autodp_search.__file__)')
case "$loc" in "$repo"*|*" $repo"*) fail "autodp was imported from the checkout ($loc), not the wheel" ;; esac

sed 's/^  - filter: words(output) >= 3$/  - filter: words(output >= 3/' "$repo/strategies/minimal.dp" > bad.dp
grep -q 'words(output >= 3' bad.dp || fail "could not make the broken strategy"
set +e
"$autodp" lint bad.dp > lint.out 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || { cat lint.out; fail "lint of a syntax error exited $rc (want 1: errors found)"; }
grep -q 'error\[syntax-error\]' lint.out && grep -q -- '--> bad.dp:6:' lint.out \
  || { cat lint.out; fail "lint gave no located syntax diagnostic"; }

cp "$repo/strategies/minimal.dp" good.dp
"$autodp" lint good.dp > /dev/null || fail "lint of a clean strategy"
"$autodp" compile good.dp > compile.out || fail "compile"
grep -q 'filter' compile.out || { cat compile.out; fail "compile printed no plan"; }

head -n 200 "$repo/examples/medquad_sample.jsonl" > data.jsonl
"$autodp" run good.dp data.jsonl -o cleaned.jsonl > run.out 2>&1 || { cat run.out; fail "run"; }
[ -s cleaned.jsonl ] || fail "run wrote no rows"

"$autodp" search data.jsonl --out search --eval-preset smoke --rounds 1 -k 2 --max-finetunes 2 \
  --no-final --heldout 20 --no-target-selection --noise-replicates 0 --race-replicates 1 --quiet > search.out 2>&1 \
  || { rc=$?; [ "$rc" = 3 ] || { cat search.out; fail "search exited $rc"; }; }
# the first round's plan names each proposal's origin: one must be a curated strategy
grep -Eq '"origin": *"seed:curated"' search/journal/round-0001.plan.json \
  || { ls -R search; fail "the offline proposer did not seed from the curated strategies"; }
echo "wheel smoke: ok ($(basename "$wheel"): lint, compile, run, search seeded from curated strategies)"
