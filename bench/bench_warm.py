"""Warm re-run time of the engine benchmark's recipe, as the minimum and median of N runs:

    python bench/bench_warm.py [--data /tmp/sft_20k.jsonl] [--repeats 15]

One cold run fills a fresh cache, then ``--repeats`` timed runs read everything from it. The
minimum is steady on a loaded machine where one cold/warm ratio is not, so it shows what a change
to the warm path costs (run it at two commits, interleaved).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import compile_recipe  # noqa: E402

from autodp_dsl.engine import Executor  # noqa: E402
from autodp_dsl.ops import registry  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/sft_20k.jsonl")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    reg = registry()
    recipe = compile_recipe(reg)
    work = Path(tempfile.mkdtemp(prefix="autodp-warm-"))
    try:
        cache = work / "cache"
        t = time.perf_counter()
        Executor(cache, registry=reg).run(recipe, args.data)
        cold = time.perf_counter() - t
        warm = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            Executor(cache, registry=reg).run(recipe, args.data)
            warm.append(time.perf_counter() - t)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"cold {cold:.2f} s; warm min {min(warm) * 1000:.0f} ms, median {statistics.median(warm) * 1000:.0f} ms ({args.repeats} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
