#!/usr/bin/env python3
"""Benchmark autodp's vectorised operators on Data-Juicer's reference recipe, and measure agreement.

    python bench/bench_ops.py                      # generate 20,000 rows into a temp dir, run the recipe
    python bench/bench_ops.py --data sft_20k.jsonl # an existing file from gen_sft_noise.py
    python bench/bench_ops.py --agreement          # agreement with Data-Juicer 1.6.1 on dj_ref_sample.jsonl

The recipe (Data-Juicer's, on the merged ``text`` field): HTML cleaning, whitespace
normalisation, length filter 20..20000 characters, special-character ratio <= 0.25, word
10-gram repetition ratio <= 0.5, exact dedup, MinHash dedup (5-word shingles, 256 permutations,
Jaccard 0.7) -- strategies/reference-recipe.dp. Each step is collected on its own (cold: a fresh
process, no cache) so every operator gets its own time; then the whole strategy runs again as one
fused lazy plan.

These are autodp's own times. A ratio against Data-Juicer comes only from bench/peers/bench_peers.py,
which runs both tools on the same rows in the same run.
Peak memory is the process's maximum resident set size (``getrusage``), which includes Python,
Polars and the data; tracemalloc cannot see Polars' allocations.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GEN = SHARED / "bench" / "gen_sft_noise.py"
REF = SHARED / "reference" / "dj_ref_sample.jsonl"
RECIPE = ROOT / "strategies" / "reference-recipe.dp"

sys.path.insert(0, str(ROOT))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def generate(n: int, seed: int, out: Path) -> Path:
    subprocess.run([sys.executable, str(GEN), "--n", str(n), "--seed", str(seed), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def bench(data: Path) -> dict:
    t0 = time.perf_counter()
    import polars as pl

    from autodp_dsl import compile_text, ir
    from autodp_dsl.lower import Context, lower_step, lower_strategy, with_row_ids
    from autodp_dsl.types import STR

    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    df = pl.read_ndjson(data).select("text")
    t_load = time.perf_counter() - t
    rss_loaded = peak_rss_mib()

    r = compile_text(RECIPE.read_text(encoding="utf-8"), columns={"text": STR})
    assert r.ok, r.diagnostics
    strategy = r.strategy

    # ---- per operator: each step collected on its own
    rows = []
    ctx = Context()
    cur = with_row_ids(df.lazy()).collect()
    n_in = cur.height
    c_all, w_all = time.process_time(), time.perf_counter()
    for i, st in enumerate(strategy.steps, 1):
        w, c = time.perf_counter(), time.process_time()
        cur = lower_step(st, cur.lazy(), ctx, str(i)).collect()
        rows.append((ir.step_text(st), time.perf_counter() - w, time.process_time() - c, cur.height))
        cur = cur.select(pl.exclude("^__stat_.*$", "__reason"))  # statistics are not carried to later steps
    w_ops, c_ops = time.perf_counter() - w_all, time.process_time() - c_all

    # ---- the whole strategy as one lazy plan
    w, c = time.perf_counter(), time.process_time()
    fused = lower_strategy(strategy, df.lazy()).collect()
    w_fused, c_fused = time.perf_counter() - w, time.process_time() - c
    assert fused.height == cur.height, (fused.height, cur.height)

    return {
        "rows_in": n_in,
        "rows_out": cur.height,
        "steps": rows,
        "ops_wall": w_ops,
        "ops_cpu": c_ops,
        "fused_wall": w_fused,
        "fused_cpu": c_fused,
        "load_wall": t_load,
        "import_wall": t_import,
        "rss_loaded_mib": rss_loaded,
        "rss_peak_mib": peak_rss_mib(),
        "text_mib": df["text"].str.len_bytes().sum() / 2**20,
    }


def report(res: dict) -> None:
    import polars as pl

    print(f"polars {pl.__version__}, {os.cpu_count()} CPUs; {res['rows_in']:,} rows, {res['text_mib']:.1f} MiB of text")
    print(f"import {res['import_wall']:.2f} s, load (read_ndjson) {res['load_wall']:.2f} s\n")
    print(f"{'step':62s} {'wall s':>7s} {'cpu s':>7s} {'rows':>7s}")
    for text, w, c, n in res["steps"]:
        print(f"{text[:62]:62s} {w:7.3f} {c:7.3f} {n:7d}")
    print(f"{'all operators (collected per step)':62s} {res['ops_wall']:7.3f} {res['ops_cpu']:7.3f} {res['rows_out']:7d}")
    print(f"{'all operators (one fused lazy plan)':62s} {res['fused_wall']:7.3f} {res['fused_cpu']:7.3f}")
    print("\n(against Data-Juicer on the same rows, in the same run: python bench/peers/bench_peers.py)")
    print(f"peak RSS {res['rss_peak_mib']:.0f} MiB (after loading the data: {res['rss_loaded_mib']:.0f} MiB)")


# ================================================================ agreement with Data-Juicer


def agreement() -> list[tuple[str, str, int, int]]:
    """(measure, detail, agreeing rows, rows) on the 2,000 reference rows."""
    import polars as pl

    from autodp_dsl.ops import registry

    sys.path.insert(0, str(GEN.parent))
    import gen_sft_noise  # noqa: E402

    raw = [r["text"] for r in gen_sft_noise.make(2000, 0)]
    ref = [json.loads(line) for line in REF.read_text(encoding="utf-8").splitlines()]
    full = [r["text"] for r in gen_sft_noise.make(20000, 0)]
    reg = registry()

    def sig(name, texts, **kw):
        op = reg.get(name)()
        return pl.DataFrame({"t": texts}).select(op.expr([pl.col("t")], op.Params(**kw))).to_series().to_list()

    def mp(name, texts, **kw):
        op = reg.get(name)()
        return pl.DataFrame({"t": texts}).select(op.map_expr(pl.col("t"), op.Params(**kw))).to_series().to_list()

    def same(a, b):
        return sum(x == y for x, y in zip(a, b, strict=True))

    out = []
    n = len(ref)
    ours_html = mp("clean.html", raw)
    ours_ws = mp("clean.whitespace", raw)
    ours_mapped = mp("clean.whitespace", ours_html)
    out.append(("clean_html output", "identical text", same(ours_html, [r["clean_html"] for r in ref]), n))
    out.append(("whitespace_normalization output", "identical text", same(ours_ws, [r["ws_norm"] for r in ref]), n))
    out.append(("html + whitespace output", "identical text", same(ours_mapped, [r["mapped"] for r in ref]), n))
    out.append(("html + whitespace output", "identical after collapsing all whitespace runs",
                same([" ".join(x.split()) for x in ours_mapped], [" ".join(r["mapped"].split()) for r in ref]), n))
    stats = (("text_len", "chars", {}), ("special_char_ratio", "special_char_ratio", {}), ("word_rep_ratio", "word_repetition_ratio", {"n": 10}))
    for key, name, kw in stats:
        out.append((f"{key}", "identical value, raw text", same(sig(name, raw, **kw), [r[f"raw.{key}"] for r in ref]), n))
        out.append((f"{key}", "identical value, on DJ's mapped text", same(sig(name, [r["mapped"] for r in ref], **kw), [r[f"mapped.{key}"] for r in ref]), n))
    keep = {
        "text_len": lambda v: 20 <= v <= 20000,
        "special_char_ratio": lambda v: v <= 0.25,
        "word_rep_ratio": lambda v: v <= 0.5,
    }
    for key, name, kw in stats:
        ours = [keep[key](v) for v in sig(name, ours_mapped, **kw)]
        theirs = [keep[key](r[f"mapped.{key}"]) for r in ref]
        out.append((f"{key} filter", "same keep decision, each on its own mapped text", same(ours, theirs), n))

    # dedups alone on the raw data (as the reference: each dedup by itself on raw text)
    from autodp_dsl import ir
    from autodp_dsl.lower import Context, lower_strategy
    from autodp_dsl.ops import KEEP, ROW_ID
    from autodp_dsl.types import STR

    class Rec(Context):
        def drop(self, lf, path, step):
            self.keep = lf.select(ROW_ID, KEEP).collect().sort(ROW_ID)[KEEP].to_list()
            return super().drop(lf, path, step)

    def dedup(texts, name, **kw):
        ctx = Rec()
        st = ir.Strategy("d", (ir.OpStep(name, (ir.Col("text", STR),), tuple(kw.items())),))
        lower_strategy(st, pl.DataFrame({"text": texts}).lazy(), ctx).collect()
        return ctx.keep

    for name, label, kw in (("dedup.exact", "document_deduplicator", {}), ("dedup.minhash", "document_minhash_deduplicator", {}),
                            ("dedup.minhash", "document_minhash_deduplicator", {"verify": True})):
        theirs = [r["raw.exact_keep" if name == "dedup.exact" else "raw.minhash_keep"] for r in ref]
        tag = f"{name}" + (" verify=true" if kw else "")
        out.append((f"{label} vs {tag}", "same keep decision, run on the 2,000 rows", same(dedup(raw, name, **kw), theirs), n))
        out.append((f"{label} vs {tag}", "same keep decision, run on all 20,000 rows", same(dedup(full, name, **kw)[:n], theirs), n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="jsonl from gen_sft_noise.py (default: generate --n 20000 --seed 0 into a temp dir)")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--agreement", action="store_true", help="measure agreement with Data-Juicer on the reference sample instead")
    ap.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    a = ap.parse_args()
    if a.agreement:
        rows = agreement()
        print("| measure | detail | agreeing rows | % |\n|---|---|---:|---:|")
        for m, d, k, n in rows:
            print(f"| {m} | {d} | {k}/{n} | {100 * k / n:.2f} |")
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data or generate(a.n, a.seed, Path(tmp) / "sft.jsonl")
        res = bench(data)
    report(res)
    if a.json:
        print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
