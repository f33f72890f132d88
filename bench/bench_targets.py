"""What processing target selection saves: one gated model operator, with and without targets.

    python bench/bench_targets.py                  # novelty (MiniLM embedder), example data: ~1 min
    python bench/bench_targets.py --step "filter: ifd(instruction, output, max_chars=1000) < 1.0"
                                                   # the SmolLM2 scorer: seconds a row on 1 CPU thread

Prepares the data as ``autodp search`` does (held-out questions set aside, the 20% sample, the
target selector trained on every searchable row), then runs ``where: lowq > 0.5 do: [STEP]`` on the
sample twice, without memo or cache: once with the selector's ``lowq``, once with ``lowq = 1`` for
every row (what ``--no-target-selection`` does). The model is loaded before either run is timed.
Prints the rows each run sent to the model, both times and their ratio. This is the saving that
``bench_search.py`` shows only when a candidate has such a step: the offline proposer seldom
writes one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "examples" / "medquad_sample.jsonl"))
    p.add_argument("--step", default="filter: novelty(output) >= 0.05")
    p.add_argument("--sample-fraction", type=float, default=0.2)
    p.add_argument("--heldout", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)

    import polars as pl

    from autodp_dsl import compile_text, render_all
    from autodp_eval import split_heldout
    from autodp_search.data import TARGET_COLUMN, load_data, make_sample, make_selector, user_columns
    from autodp_search.execution import run_strategies

    full = load_data(args.data).frame
    pool, _ = split_heldout(full, args.heldout, seed=args.seed)
    sample, _, _ = make_sample(pool, args.sample_fraction, args.seed)
    selector = make_selector(pool, args.seed, True)
    arms = {"targets": selector.add(sample, TARGET_COLUMN), "every row": sample.with_columns(pl.lit(1.0).alias(TARGET_COLUMN))}
    text = f"dp: 1\nname: gated\nsteps:\n  - where: {TARGET_COLUMN} > 0.5\n    do:\n      - {args.step}\n"
    res = compile_text(text, columns=user_columns(arms["targets"]))
    if not res.ok:
        print(render_all(res.diagnostics, text), file=sys.stderr)
        return 2
    # load the model once, outside the timings (a one-row run of the same step)
    run_strategies([res.strategy], arms["every row"].head(1), "warm-up", None, memo=False)
    fig = {"data": args.data, "step": args.step, "sample_rows": sample.height, "selector": selector.metrics}
    for name, frame in arms.items():
        targets = int((frame[TARGET_COLUMN] > 0.5).sum())
        t = time.perf_counter()
        run = run_strategies([res.strategy], frame, f"bench-targets-{name}", None, memo=False)[0]
        secs = time.perf_counter() - t
        if run.error:
            print(f"{name}: {run.error}", file=sys.stderr)
            return 1
        fig[name] = {"rows_to_model": targets, "seconds": round(secs, 2), "rows_kept": run.rows_out}
        print(f"{name:>10}: {targets:5d} of {frame.height} rows sent to the model, {secs:7.1f} s, {run.rows_out} kept")
    ratio = fig["every row"]["seconds"] / max(fig["targets"]["seconds"], 1e-9)
    fig["ratio"] = round(ratio, 1)
    m = selector.metrics
    print(f"selector on held-out weak labels: precision {m['precision']:.2f}, recall {m['recall']:.2f}")
    print(f"ratio every row / targets: {ratio:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
