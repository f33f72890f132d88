"""The Ray engine against the local engines on the reference recipe (issue 17, first slice):

    python bench/bench_ray.py --data /tmp/sft_20000.jsonl [--num-cpus 2] [--block-rows 5000] [--repeat 2]
    python bench/bench_ray.py --repeat 1 --data ../shared/data/medquad/medquad.jsonl ../shared/data/genmedgpt_5k/genmedgpt_5k.jsonl \
        --strategy strategies/medquad-clean.dp strategies/genmedgpt-clean.dp

The data comes from ``gen_sft_noise.py --n N --seed 0`` (or any JSONL/Parquet with
``--strategy``). In one process, one after the other and
``--repeat`` times each: the in-memory (batch) run, the streaming run and the Ray run on a local
cluster of ``--num-cpus`` CPUs (started before any timing; its first run also starts the workers,
which is why the runs are repeated). Every run is checked against the batch run: the same kept
ids, dropped ids with steps and reasons, and per-step counts; a difference is an error. Printed:
wall seconds per run, the Ray/batch ratio of the best runs, Ray's seconds per step, and the load
average before and after (the machine may be shared: compare runs of one invocation only).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "strategies" / "reference-recipe.dp"


def same(a, b) -> list[str]:
    """What differs between two results (empty: the same)."""
    bad = []
    if not a.ids.equals(b.ids):
        bad.append("kept ids")
    if not a.accounting.dropped_ids.sort("rid").equals(b.accounting.dropped_ids.sort("rid")):  # streaming: in pass order
        bad.append("dropped ids, steps or reasons")
    for x, y in zip(a.accounting.steps, b.accounting.steps, strict=True):
        if (x.rows_in, x.rows_out, x.modified, x.dropped) != (y.rows_in, y.rows_out, y.modified, y.dropped):
            bad.append(f"step {x.step} counts")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, nargs="+")
    ap.add_argument("--strategy", type=Path, nargs="+", default=[RECIPE], help="one per --data (default: strategies/reference-recipe.dp)")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--block-rows", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if len(args.strategy) != len(args.data):
        raise SystemExit("error: give one --strategy per --data")

    import ray

    from autodp_dsl.engine import Executor
    from autodp_dsl.engine.render import load_strategy

    t = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"ray.init: {time.perf_counter() - t:.1f} s ({args.num_cpus} CPUs)")
    for strategy, data in zip(args.strategy, args.data, strict=True):
        print(f"{strategy.name} on {data}")
        s = load_strategy(strategy)
        ex = Executor()
        best: dict[str, float] = {}
        ref = None
        with tempfile.TemporaryDirectory(prefix="autodp-bench-ray-") as tmp:
            for rep in range(args.repeat):
                for engine in ("batch", "streaming", "ray"):
                    load0 = os.getloadavg()[0]
                    t = time.perf_counter()
                    if engine == "batch":
                        res = ex.run(s, data)
                    elif engine == "streaming":
                        res = ex.run_streaming(s, data, Path(tmp) / "s.parquet")
                    else:
                        res = ex.run_ray(s, data, Path(tmp) / "r.parquet", block_rows=args.block_rows)
                    wall = time.perf_counter() - t
                    ref = ref or res
                    bad = same(ref, res)
                    if bad:
                        print(f"error: the {engine} run differs from the batch run: {', '.join(bad)}", file=sys.stderr)
                        return 1
                    best[engine] = min(best.get(engine, wall), wall)
                    steps = " ".join(f"{st.step}:{st.seconds:.1f}" for st in res.accounting.steps) if engine == "ray" else ""
                    print(
                        f"run {rep + 1} {engine:<9} {wall:6.1f} s wall, kept {res.accounting.kept:,} of {res.accounting.rows_in:,}, "
                        f"load {load0:.1f}->{os.getloadavg()[0]:.1f} {steps}",
                        flush=True,
                    )
        print("same kept ids, drop reasons and step counts in every run; best: " + ", ".join(f"{k} {v:.1f} s" for k, v in best.items()))
        print(f"ray / batch: {best['ray'] / best['batch']:.2f}x, ray / streaming: {best['ray'] / best['streaming']:.2f}x")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
