#!/usr/bin/env python3
"""Power of the evaluator against its placebo (issue 11): does "drop the planted junk" beat "drop the
same number of random rows"?

For each junk kind of ``bench/junk.py`` separately: the held-out questions are split off the clean
data first (a trusted set: the junk is planted in training data only), then 30% of the remaining
training rows get junk of that kind. The candidate is the junky data minus its junk rows, the baseline
is the junky data, and the placebo drops as many random rows of the junky data (drawn afresh per
replicate). Target (issue 11): the candidate-vs-placebo interval lies above 0.5 for at least 4 of the 6
kinds, ``swapped`` among them.

Seeds are roles: ``--role dev`` (the shipped example, development seeds: what the default settings
were chosen on) and ``--role fresh`` (a MedQuAD subset and seeds never used while choosing). Every
(arm, replicate) is memoised in the cache directory (default ``.autodp/eval-power``): an interrupted
run resumes where it stopped; the CPU estimate is printed before anything trains.

    python bench/eval_power.py --role dev --kinds heading,swapped --estimate-only
    python bench/eval_power.py --role fresh --json power-medquad.json       # the issue's figure
    python bench/eval_power.py --role dev --set train.average_tail=0.5      # a variant of the recipe
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from eval_null import EXAMPLE, MEDQUAD, parse_overrides, read, steps_per_arm  # noqa: E402
from junk import KINDS, plant  # noqa: E402

from autodp_eval import EvalConfig, Evaluation, load_rows, split_heldout  # noqa: E402

#: seeds of each role: data subset, held-out split, junk, training (replicate r: seed + r), placebo draws
ROLES = {
    "dev": {"dataset": "example", "subset": None, "heldout": 101, "junk": 1001, "train": 7000, "placebo": 7000},
    "fresh": {"dataset": "medquad1k", "subset": 1, "heldout": 1, "junk": 1, "train": 0, "placebo": 0},
}
JUNK_FRACTION = 0.3
SEC_PER_STEP = 0.15


def data(role: dict) -> tuple[list[dict], list[dict]]:
    """(training pool, held-out questions) of a role: 1,000 training rows + 200 questions for MedQuAD."""
    if role["dataset"] == "example":
        rows = read(EXAMPLE)
    else:
        if not MEDQUAD.is_file():
            raise SystemExit(f"error: {MEDQUAD} not found (the shared MedQuAD copy)")
        rows = random.Random(f"power-subset:{role['subset']}").sample(read(MEDQUAD), 1400)
    pool_df, held_df = split_heldout(rows, 200, role["heldout"])
    pool = load_rows(pool_df)
    if role["dataset"] == "medquad1k":
        pool = pool[:1000]
    return pool, load_rows(held_df)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=sorted(ROLES), default="fresh")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--replicates", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="config override")
    ap.add_argument("--cache-dir", type=Path, default=REPO / ".autodp" / "eval-power")
    ap.add_argument("--estimate-only", action="store_true")
    ap.add_argument("--json", type=Path, help="write every kind's figures here")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SystemExit(f"error: unknown junk kind(s) {', '.join(unknown)}; valid: {', '.join(KINDS)}")
    role = ROLES[args.role]
    overrides = parse_overrides(args.set)
    overrides.setdefault("train", {}).setdefault("seed", role["train"])
    overrides.setdefault("placebo_seed", role["placebo"])
    overrides.setdefault("generate", {}).setdefault("enabled", False)
    cfg = EvalConfig.preset(args.preset, **overrides)

    pool, held = data(role)
    evals = []
    for kind in kinds:
        junky, junk_idx = plant(pool, kind, JUNK_FRACTION, seed=role["junk"])
        drop = set(junk_idx)
        cand = [r for i, r in enumerate(junky) if i not in drop]
        evals.append((kind, len(drop), Evaluation(cand, junky, held, cfg, args.cache_dir, placebo=True)))

    todo = sum(len(ev.pending(args.replicates)) for _, _, ev in evals)
    steps = steps_per_arm(cfg, len(pool))
    cpu_s = todo * (steps * SEC_PER_STEP + 4)
    print(
        f"role {args.role}: {role['dataset']}, {len(pool)} training rows ({JUNK_FRACTION:.0%} junk), "
        f"{len(held)} held-out questions, preset {args.preset}, {args.replicates} replicates, kinds {', '.join(kinds)}"
    )
    print(
        f"CPU estimate: {todo} (arm, replicate) units left to train x ({steps} steps x {SEC_PER_STEP} s/step + 4 s)"
        f" = {cpu_s / 60:.0f} CPU-minutes (one thread; memo: {args.cache_dir})",
        flush=True,
    )
    if args.estimate_only:
        return 0

    out = []
    for kind, n_junk, ev in evals:
        t = time.perf_counter()
        res = ev.run(args.replicates)
        pl = res.placebo
        assert pl is not None
        cvp, band = pl.candidate_vs_placebo, pl.band
        above = cvp.win.low > 0.5
        out.append(
            {
                "kind": kind,
                "junk_rows": n_junk,
                "candidate_vs_placebo": cvp.model_dump(mode="json"),
                "placebo_band": band.model_dump(mode="json"),
                "candidate_vs_baseline": {
                    "win_rate": res.win_rate,
                    "ci": [res.ci_low, res.ci_high],
                    "nll_diff": res.nll_diff,
                    "nll_ci": [res.nll_ci_low, res.nll_ci_high],
                },
                "beats_placebo": above,
                "seconds": round(time.perf_counter() - t, 1),
            }
        )
        w, n = cvp.win, cvp.nll
        print(
            f"  {kind:11s} vs placebo: win {w.estimate:.3f} [{w.low:.3f}, {w.high:.3f}] per replicate "
            f"{', '.join(f'{x:.2f}' for x in w.per_replicate)}; NLL diff {n.estimate:+.4f} [{n.low:+.4f}, {n.high:+.4f}]"
            f" | band (placebo vs junky) {band.win.estimate:.3f} [{band.win.low:.3f}, {band.win.high:.3f}]"
            f" | vs junky {res.win_rate:.3f} [{res.ci_low:.3f}, {res.ci_high:.3f}]"
            f"  {'BEATS PLACEBO' if above else ''} ({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
    wins = [r["kind"] for r in out if r["beats_placebo"]]
    print(f"beats its placebo: {len(wins)} of {len(out)} kinds ({', '.join(wins) or 'none'})")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"role": args.role, "seeds": role, "replicates": args.replicates,
                 "config": cfg.model_dump(mode="json"), "kinds": out},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
