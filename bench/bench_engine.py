"""Engine benchmark: cache reuse and batch sharing on the 20,000-sample reference data.

    python /work/shared/bench/gen_sft_noise.py --n 20000 --seed 0 --out /tmp/sft_20k.jsonl
    python bench/bench_engine.py --data /tmp/sft_20k.jsonl [--json out.json]

(the data file is generated on the fly when --data is missing or absent.)

Recipe (Data-Juicer's reference, on ``text``): html clean, whitespace normalisation, length
20..20000 chars, special-character ratio <= 0.25, word 10-gram repetition ratio <= 0.5, exact dedup,
MinHash dedup (5-word shingles, 256 permutations, Jaccard 0.7). Figures, all ratios from this one run:

  (a) warm re-run of the same strategy / cold run              target < 5 %
  (b) only the MinHash threshold changed / cold run             target < 10 %
  (c) 16 prefix-sharing strategies one by one / as one batch    target >= 4x
  (d) cache bytes on disk / input bytes                         target <= 1x

Every run is end to end from the file path (read, fingerprint, validate, execute). The stdlib
operators are used where present; ``dedup.minhash`` falls back to the implementation below when
the catalog does not have it yet: one-permutation MinHash with 256 bins (Data-Juicer computes 256
independent permutations), 25 bands x 10 rows for 0.7 as Data-Juicer chooses; it keeps the signatures
in a statistic, so a threshold change reuses them.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autodp_dsl.compiler import compile_text  # noqa: E402
from autodp_dsl.engine import Executor  # noqa: E402
from autodp_dsl.ops import KEEP, ROW_ID, Arg, Family, Op, OpKind, Params, Registry, registry  # noqa: E402
from autodp_dsl.types import INT, STR  # noqa: E402

GEN = Path("/work/shared/bench/gen_sft_noise.py")

# ---------------------------------------------------------------- fallback MinHash (bench only)

_EMPTY = np.uint64(1 << 32)  # an empty bin (no shingle hashed into it)


def _signatures(texts: pl.Series, num_perm: int, ngram: int) -> pl.Series:
    """One-permutation MinHash (Li, Owen & Zhang 2012) with rotation densification: one 64-bit hash
    per distinct shingle, its top bits pick one of ``num_perm`` bins, the bin keeps the minimum of
    the low 32 bits. Estimates Jaccard like ``num_perm`` independent permutations at 1/num_perm the
    cost. Texts without a shingle get an all-0xFFFFFFFF signature (as Data-Juicer's do)."""
    n = len(texts)
    w = (
        pl.DataFrame({"t": texts.fill_null("").str.to_lowercase()})
        .with_row_index("doc")
        .select("doc", pl.col("t").str.split(" ").alias("w"))
        .explode("w")
        .filter(pl.col("w").is_not_null() & (pl.col("w") != ""))
        .select("doc", pl.col("w").hash(seed=0).alias("h"))
    )
    doc = w["doc"].to_numpy()
    wh = w["h"].to_numpy()
    m = len(wh) - ngram + 1
    sig = np.full((n, num_perm), 0xFFFFFFFF, dtype=np.uint32)
    if m <= 0:
        return pl.Series(sig).cast(pl.Array(pl.UInt32, num_perm))
    sh = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(ngram):
            sh = sh * np.uint64(0x9E3779B97F4A7C15) + wh[k : k + m]
        sh ^= sh >> np.uint64(29)
        sh *= np.uint64(0xBF58476D1CE4E5B9)
        sh ^= sh >> np.uint64(32)
    valid = doc[:m] == doc[ngram - 1 :]
    sdoc, sh = doc[:m][valid], sh[valid]
    bits = int(np.log2(num_perm))
    binned = pl.DataFrame({"doc": sdoc, "bin": (sh >> np.uint64(64 - bits)).astype(np.uint16), "v": (sh & np.uint64(0xFFFFFFFF))})
    mins = binned.group_by("doc", "bin").agg(pl.col("v").min())
    full = np.full((n, num_perm), _EMPTY, dtype=np.uint64)
    full[mins["doc"].to_numpy(), mins["bin"].to_numpy()] = mins["v"].to_numpy()
    # rotation densification: an empty bin takes the next non-empty bin's value (circularly) + C * distance
    two = np.concatenate([full, full], axis=1)
    idx = np.where(two != _EMPTY, np.arange(2 * num_perm)[None, :], 2 * num_perm)
    nxt = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1][:, :num_perm]
    has = nxt[:, 0] < 2 * num_perm
    nxt = np.minimum(nxt, 2 * num_perm - 1)
    dist = (nxt - np.arange(num_perm)[None, :]).astype(np.uint64)
    vals = (np.take_along_axis(two, nxt, axis=1) + dist * np.uint64(0x6F4F2A35)) & np.uint64(0xFFFFFFFF)
    sig[has] = vals[has].astype(np.uint32)
    return pl.Series(sig).cast(pl.Array(pl.UInt32, num_perm))


@functools.lru_cache(maxsize=64)
def _optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's choice: minimise false positive + false negative areas (weights 0.5/0.5)."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=np.float64)
    b, r = pairs[:, :1], pairs[:, 1:]
    lo, hi = np.linspace(0.0, threshold, 100)[None, :], np.linspace(threshold, 1.0, 100)[None, :]
    fp = np.trapezoid(1 - (1 - lo**r) ** b, lo, axis=1)
    fn = np.trapezoid((1 - hi**r) ** b, hi, axis=1)
    best = int(np.argmin(0.5 * fp + 0.5 * fn))
    return int(pairs[best, 0]), int(pairs[best, 1])


def _lsh_keep(rids: np.ndarray, sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Keep the first row (lowest id) of each cluster: rows sharing any band are one cluster
    (transitively, as Data-Juicer's union-find; no Jaccard verification)."""
    n = len(rids)
    order = np.argsort(rids, kind="stable")
    cols = np.ascontiguousarray(sig[order, : bands * rows].T).astype(np.uint64)  # one row per permutation
    groups = []
    with np.errstate(over="ignore"):
        for bnd in range(bands):
            key = np.zeros(n, dtype=np.uint64)
            for j in range(bnd * rows, (bnd + 1) * rows):
                key ^= cols[j]
                key *= np.uint64(0x100000001B3)
            o = np.argsort(key, kind="stable")
            k = key[o]
            starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
            if len(starts) < n:  # some bucket holds more than one row
                groups.append((o, starts, np.diff(np.r_[starts, n])))
    labels = np.arange(n)
    while True:  # propagate the smallest index through every shared bucket until stable
        old = labels.copy()
        for o, starts, sizes in groups:
            gmin = np.minimum.reduceat(labels[o], starts)
            labels[o] = np.minimum(labels[o], np.repeat(gmin, sizes))
        labels = labels[labels]
        if np.array_equal(labels, old):
            break
    keep = np.empty(n, dtype=bool)
    keep[order] = labels == np.arange(n)
    return keep


class MinhashParams(Params):
    threshold: float = 0.7
    num_perm: int = 256
    ngram: int = 5


class BenchMinhash(Op):
    """Near-duplicate removal with MinHash-LSH (bench fallback): keeps the first of each cluster."""

    name = "dedup.minhash"
    kind = OpKind.GLOBAL
    family = Family.CLEANING
    args = (Arg("text", STR),)
    Params = MinhashParams

    def lower(self, lf, args, params, ctx):
        from autodp_dsl.ir import expr_text

        num_perm, ngram = params.num_perm, params.ngram
        sig_expr = ctx.expr(args[0]).map_batches(lambda s: _signatures(s, num_perm, ngram), return_dtype=pl.Array(pl.UInt32, num_perm), is_elementwise=True)
        spec = {"op": self.name, "v": self.version, "args": [expr_text(a) for a in args], "num_perm": num_perm, "ngram": ngram}
        lf, col = ctx.statistic(lf, "minhash.signature", spec, sig_expr)
        bands, rows = _optimal_bands(params.threshold, num_perm)

        def keep(s: pl.Series) -> pl.Series:
            f = s.struct.unnest()
            return pl.Series(_lsh_keep(f[ROW_ID].to_numpy(), f[col].to_numpy(), bands, rows))

        return lf.with_columns(pl.struct(pl.col(ROW_ID), pl.col(col)).map_batches(keep, return_dtype=pl.Boolean).alias(KEEP))


def bench_registry(minhash: str = "auto") -> tuple[Registry, list[str]]:
    base = registry()
    if "dedup.minhash" in base and minhash != "bench":
        return base, []
    if minhash == "stdlib":
        raise SystemExit("the operator catalog has no dedup.minhash")
    reg = Registry()
    for op in base:
        if op.name != "dedup.minhash":
            reg.add(op)
    reg.add(BenchMinhash)
    return reg, ["dedup.minhash"]


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
    ap.add_argument("--minhash", choices=("auto", "stdlib", "bench"), default="auto", help="which dedup.minhash (auto: the catalog's when present)")
    args = ap.parse_args()
    data = Path(args.data)
    if not data.exists():
        subprocess.run([sys.executable, str(GEN), "--n", "20000", "--seed", "0", "--out", str(data)], check=True)
    reg, fallback = bench_registry(args.minhash)
    base = compile_recipe(reg)
    work = Path(tempfile.mkdtemp(prefix="autodp-bench-"))
    out: dict = {"data": str(data), "input_bytes": data.stat().st_size, "fallback_ops": fallback}
    print(f"data {data} ({out['input_bytes'] / 1e6:.1f} MB); fallback ops: {fallback or 'none'}")
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
