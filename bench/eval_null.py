#!/usr/bin/env python3
"""Null coverage of the evaluator (issue 11): how often does an interval exclude 0.5 when nothing but
chance separates the arms?

20 null comparisons per data set, at the chosen settings (preset, replicates):

* 10 "drop5":  the data minus a random 5% of its training rows, against the data;
* 10 "drop20": the data minus a random 20%, against the data minus another random 20% (same size).

Comparison k trains with its own seed block (``train.seed + CALIBRATION_BLOCK * (k + 1)``, for both
arms, replicates paired inside it), so no two comparisons share a trained baseline. Targets: at most
2 of 20 intervals exclude 0.5, and the mean win rate lies in [0.45, 0.55].

Every (arm, replicate) is memoised in the cache directory (default ``.autodp/eval-null``, git-ignored): an
interrupted run resumes where it stopped. The CPU estimate (units left to train x steps x seconds per
step) is printed before anything trains; ``--estimate-only`` stops there.

    python bench/eval_null.py --quick                        # tiny end-to-end check (smoke preset, ~1-2 min)
    python bench/eval_null.py --dataset example --replicates 3 --estimate-only
    python bench/eval_null.py --dataset medquad2k --replicates 3 --json null-medquad.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autodp_eval import EvalConfig, Evaluation, load_rows, random_drop, split_heldout  # noqa: E402
from autodp_eval._calibrate import CALIBRATION_BLOCK  # noqa: E402

EXAMPLE = REPO / "examples" / "medquad_sample.jsonl"
MEDQUAD = REPO.parent / "shared" / "data" / "medquad" / "medquad.jsonl"
#: seconds per optimizer step of the tiny preset on one idle thread (41 s for 300 steps of 16, measured 2026-12-07)
SEC_PER_STEP = 0.15


def read(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        r["category"] = (r.get("meta") or {}).get("qtype") or r.get("category") or "unknown"
    return load_rows(rows)


def dataset(name: str, subset_seed: int, quick: bool) -> list[dict]:
    if name == "example":
        rows = read(EXAMPLE)
    elif name == "medquad2k":
        if not MEDQUAD.is_file():
            raise SystemExit(f"error: {MEDQUAD} not found (the shared MedQuAD copy)")
        rows = read(MEDQUAD)
        rows = random.Random(f"subset:{subset_seed}").sample(rows, 2000)
    else:
        raise SystemExit(f"error: unknown data set {name!r}")
    return rows[:160] if quick else rows


def designs(pool: list[dict], n5: int, n20: int) -> list[tuple[str, list[dict], list[dict]]]:
    """(label, candidate, baseline) of every null comparison, in a fixed order."""
    out = []
    for k in range(n5):
        out.append((f"drop5 #{k}", random_drop(pool, round(0.05 * len(pool)), f"null5:{k}"), pool))
    m = round(0.2 * len(pool))
    for k in range(n20):
        out.append(
            (f"drop20 #{k}", random_drop(pool, m, f"null20a:{k}"), random_drop(pool, m, f"null20b:{k}"))
        )
    return out


def steps_per_arm(cfg: EvalConfig, rows: int) -> int:
    t = cfg.train
    return t.max_steps or max(t.min_steps, t.epochs * math.ceil(rows / t.batch_size))


def parse_overrides(items: list[str]) -> dict:
    """``KEY=JSON`` items (``train.max_steps=400``) as a nested dict of config overrides."""
    overrides: dict = {}
    for item in items:
        key, _, raw = item.partition("=")
        node = overrides
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        try:
            node[leaf] = json.loads(raw)
        except ValueError:
            node[leaf] = raw
    return overrides


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["example", "medquad2k"], default="example")
    ap.add_argument("--subset-seed", type=int, default=0, help="which 2,000 MedQuAD rows (medquad2k)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--replicates", type=int, default=3)
    ap.add_argument("--per-design", type=int, default=10, help="comparisons per design (drop5, drop20)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="config override")
    ap.add_argument("--cache-dir", type=Path, default=REPO / ".autodp" / "eval-null")
    ap.add_argument(
        "--sec-per-step", type=float, default=None, help=f"for the estimate (default {SEC_PER_STEP})"
    )
    ap.add_argument("--estimate-only", action="store_true")
    ap.add_argument("--json", type=Path, help="write every comparison's figures here")
    ap.add_argument(
        "--quick", action="store_true", help="160 rows, smoke preset, 2 + 2 comparisons, 2 replicates"
    )
    args = ap.parse_args(argv)

    overrides = parse_overrides(args.set)
    if args.quick:
        args.preset, args.replicates, args.per_design = "smoke", 2, 2
        overrides = {"generate": {"enabled": False}, "heldout_n": 20, **overrides}
    cfg = EvalConfig.preset(args.preset, **overrides)
    sec_step = args.sec_per_step or (0.02 if args.quick else SEC_PER_STEP)

    rows = dataset(args.dataset, args.subset_seed, args.quick)
    pool_df, held_df = split_heldout(rows, cfg.heldout_n, cfg.heldout_seed)
    pool, held = load_rows(pool_df), load_rows(held_df)
    comparisons = []
    for k, (label, cand, base) in enumerate(designs(pool, args.per_design, args.per_design)):
        ck = cfg.with_overrides(train={"seed": cfg.train.seed + CALIBRATION_BLOCK * (k + 1)})
        comparisons.append((label, Evaluation(cand, base, held, ck, args.cache_dir)))

    # the CPU estimate, before anything trains
    total_units = len(comparisons) * 2 * args.replicates
    todo = sum(len(ev.pending(args.replicates)) for _, ev in comparisons)
    steps = steps_per_arm(cfg, len(pool))
    # per arm besides training: loading, reference scoring, and generation when enabled (docs/eval.md:
    # generation 4-6 s and scoring 2-3 s per arm for 200 questions with the tiny preset)
    extra = (8.0 if cfg.generate.enabled else 3.0) * len(held) / 200
    cpu_s = todo * (steps * sec_step + extra)
    print(
        f"{args.dataset}: {len(pool)} training rows, {len(held)} held-out questions, preset {args.preset}, "
        f"{args.replicates} replicates, {len(comparisons)} null comparisons"
    )
    print(
        f"CPU estimate: {todo} of {total_units} (arm, replicate) units left to train x ({steps} steps x "
        f"{sec_step} s/step + {extra:.0f} s) = {cpu_s / 3600:.2f} CPU-hours (one thread; memo: {args.cache_dir})",
        flush=True,
    )
    if args.estimate_only:
        return 0

    t0 = time.perf_counter()
    results = []
    for label, ev in comparisons:
        t = time.perf_counter()
        res = ev.run(args.replicates)
        excl = res.ci_low > 0.5 or res.ci_high < 0.5
        results.append(
            {
                "comparison": label,
                "win_rate": res.win_rate,
                "ci": [res.ci_low, res.ci_high],
                "nll_diff": res.nll_diff,
                "nll_ci": [res.nll_ci_low, res.nll_ci_high],
                "per_replicate": res.contrast.win.per_replicate,
                "between_replicate_sd": res.between_replicate_sd,
                "excludes_half": excl,
                "seconds": round(time.perf_counter() - t, 1),
                "from_cache": res.from_cache,
            }
        )
        print(
            f"  {label:10s} win rate {res.win_rate:.3f} [{res.ci_low:.3f}, {res.ci_high:.3f}]"
            f"  NLL diff {res.nll_diff:+.4f} [{res.nll_ci_low:+.4f}, {res.nll_ci_high:+.4f}]"
            f"  {'EXCLUDES 0.5' if excl else ''}  ({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
    n_excl = sum(r["excludes_half"] for r in results)
    mean = sum(r["win_rate"] for r in results) / len(results)
    limit = max(0, round(0.1 * len(results)))
    ok = n_excl <= limit and 0.45 <= mean <= 0.55
    print(
        f"intervals excluding 0.5: {n_excl} of {len(results)} (target <= {limit}); mean win rate {mean:.3f} "
        f"(target [0.45, 0.55]) -> {'PASS' if ok else 'FAIL'}; {time.perf_counter() - t0:.0f} s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "dataset": args.dataset,
                    "preset": args.preset,
                    "replicates": args.replicates,
                    "config": cfg.model_dump(mode="json"),
                    "comparisons": results,
                    "excluding_half": n_excl,
                    "mean_win_rate": mean,
                    "pass": ok,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
