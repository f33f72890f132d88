"""Engine benchmark: cache reuse and batch sharing on the 20,000-sample reference data.

    python ../shared/bench/gen_sft_noise.py --n 20000 --seed 0 --out /tmp/sft_20k.jsonl
    python bench/bench_engine.py --data /tmp/sft_20k.jsonl [--json out.json]

(the data file is generated when the --data file is absent, with ``shared/bench/gen_sft_noise.py``
next to the checkout, as the other benchmarks do.)

Recipe (Data-Juicer's reference, on ``text``): html clean, whitespace normalisation, length
20..20000 chars, special-character ratio <= 0.25, word 10-gram repetition ratio <= 0.5, exact dedup,
MinHash dedup (5-word shingles, 256 permutations, Jaccard 0.7). Figures, all ratios from this one run:

  (a) warm re-run of the same strategy / cold run              target < 5 %
  (b) only the MinHash threshold changed / cold run             target < 10 %
  (c) 16 prefix-sharing strategies one by one / as one batch    target >= 4x
  (d) cache bytes on disk / input bytes                         target <= 1x

Every run is end to end from the file path (read, fingerprint, validate, execute), with the
product's own operators (the default registry).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autodp_dsl.compiler import compile_text  # noqa: E402
from autodp_dsl.engine import Executor  # noqa: E402
from autodp_dsl.ops import registry  # noqa: E402
from autodp_dsl.types import INT, STR  # noqa: E402

GEN = ROOT.parent / "shared" / "bench" / "gen_sft_noise.py"

# ---------------------------------------------------------------- recipe

RECIPE = """dp: 1
name: {name}
steps:
  - clean.html(text)
  - clean.whitespace(text)
  - filter: chars(text) >= 20 and chars(text) <= 20000
  - filter: special_char_ratio(text) <= {special}
  - filter: word_repetition_ratio(text, n=10) <= 0.5
  - dedup.exact(text)
  - dedup.minhash(text, threshold={mh}, num_perm=256, ngram=5)
"""


COLUMNS = {"id": INT, "noise": STR, "instruction": STR, "response": STR, "text": STR}


def compile_recipe(reg, name="bench", special=0.25, mh=0.7):
    r = compile_text(RECIPE.format(name=name, special=special, mh=mh), reg=reg, columns=COLUMNS)
    if r.strategy is None:
        raise SystemExit("recipe does not compile:\n" + "\n".join(d.headline() for d in r.diagnostics))
    return r.strategy


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/sft_20k.jsonl")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--skip-c", action="store_true", help="skip the 16-strategy comparison (slow)")
    args = ap.parse_args()
    data = Path(args.data)
    if not data.exists():
        if not GEN.exists():
            raise SystemExit(f"error: {data} does not exist and its generator {GEN} is not there: pass --data")
        subprocess.run([sys.executable, str(GEN), "--n", "20000", "--seed", "0", "--out", str(data)], check=True)
    reg = registry()
    base = compile_recipe(reg)
    work = Path(tempfile.mkdtemp(prefix="autodp-bench-"))
    out: dict = {"data": str(data), "input_bytes": data.stat().st_size}
    print(f"data {data} ({out['input_bytes'] / 1e6:.1f} MB)")
    try:
        cache = work / "cache"
        t = time.perf_counter()
        cold = Executor(cache, registry=reg).run(base, data)
        out["cold_s"] = time.perf_counter() - t
        t = time.perf_counter()
        warm = Executor(cache, registry=reg).run(base, data)
        out["warm_s"] = time.perf_counter() - t
        assert warm.frame.equals(cold.frame) and warm.accounting.balanced
        t = time.perf_counter()
        changed = Executor(cache, registry=reg).run(compile_recipe(reg, mh=0.8), data)
        out["threshold_s"] = time.perf_counter() - t
        out["cache_bytes"] = du(cache)
        out["kept"] = {"cold": cold.frame.height, "threshold_0.8": changed.frame.height}
        out["steps_cold"] = [(s.text[:50], round(s.seconds, 3), s.rows_out) for s in cold.accounting.steps]
        out["steps_warm"] = [(s.cache, round(s.seconds, 3)) for s in warm.accounting.steps]
        out["read_s"] = {"cold": cold.read_seconds, "warm": warm.read_seconds}
        print(f"cold {out['cold_s']:.2f} s (read {cold.read_seconds:.2f} s), kept {cold.frame.height:,} of {cold.accounting.rows_in:,}")
        for s in cold.accounting.steps:
            print(f"   {s.step} {s.text[:60]:<60} {s.seconds:6.2f} s  {s.rows_in:>6} -> {s.rows_out:<6}")
        print(f"warm {out['warm_s']:.2f} s (read {warm.read_seconds:.2f} s); threshold 0.7 -> 0.8: {out['threshold_s']:.2f} s (read {changed.read_seconds:.2f} s)")
        print("   warm steps:", " ".join(f"{s.seconds:.2f}" for s in warm.accounting.steps), " threshold steps:", " ".join(f"{s.seconds:.2f}" for s in changed.accounting.steps))

        if not args.skip_c:
            variants = [compile_recipe(reg, name=f"v{i}", special=sp, mh=mh) for i, (sp, mh) in enumerate((sp, mh) for sp in (0.25, 0.3) for mh in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85))]
            t = time.perf_counter()
            batch = Executor(work / "cache_batch", registry=reg).run_batch(variants, data)
            out["batch16_s"] = time.perf_counter() - t
            t = time.perf_counter()
            singles = []
            for i, v in enumerate(variants):
                singles.append(Executor(work / f"cache_single_{i}", registry=reg).run(v, data))
            out["single16_s"] = time.perf_counter() - t
            assert all(a.frame.equals(b.frame) for a, b in zip(batch, singles, strict=True))
            print(f"16 strategies: batch {out['batch16_s']:.2f} s, one by one {out['single16_s']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fig = {
        "a_warm_over_cold": out["warm_s"] / out["cold_s"],
        "b_threshold_over_cold": out["threshold_s"] / out["cold_s"],
        "d_cache_over_input": out["cache_bytes"] / out["input_bytes"],
    }
    if "batch16_s" in out:
        fig["c_single_over_batch"] = out["single16_s"] / out["batch16_s"]
    out["figures"] = fig
    print()
    print(f"(a) warm / cold             {fig['a_warm_over_cold']:.1%}   (target < 5%)")
    print(f"(b) threshold change / cold {fig['b_threshold_over_cold']:.1%}   (target < 10%)")
    if "c_single_over_batch" in fig:
        print(f"(c) one by one / batch      {fig['c_single_over_batch']:.1f}x   (target >= 4x)")
    print(f"(d) cache / input bytes     {fig['d_cache_over_input']:.2f}x  (target <= 1x)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
