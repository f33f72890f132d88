#!/usr/bin/env python3
"""Coverage of interval methods over R replicates x n questions, by simulation (numpy, about a minute).

Win points (1 / 0.5 / 0, a tie within 0.05) of a latent per-question difference
``q_i + t_r + e_ri`` with known spreads: ``q`` the questions, ``t`` the training run of a replicate
(the between-replicate variance), ``e`` the rest. The truth is the population win rate (2 million
draws). Methods: the evaluator's variance-components t interval (autodp_eval.replicate_interval),
a two-level percentile bootstrap (replicates, then questions), and a bootstrap over the questions of
pooled replicates (training variance ignored, as the evaluator did before replicates).

    python bench/eval_interval_sim.py                 # 1000 experiments per cell (bootstraps: 300)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from autodp_eval import replicate_interval  # noqa: E402

REGIMES = [(0.5, 0.3, 1.0), (0.2, 0.5, 1.0), (1.0, 0.1, 0.5), (0.3, 0.0, 1.0)]


def points(d: np.ndarray) -> np.ndarray:
    return np.where(d > 0.05, 1.0, np.where(d < -0.05, 0.0, 0.5))


def truth(sq: float, st: float, se: float) -> float:
    rng = np.random.default_rng(99)
    n = 2_000_000
    return float(points(rng.normal(0, sq, n) + rng.normal(0, st, n) + rng.normal(0, se, n)).mean())


def coverage(
    method: str, R: int, n: int, sds: tuple[float, float, float], experiments: int, seed: int
) -> float:
    rng = np.random.default_rng(seed)
    target = truth(*sds)
    hits = 0
    for _ in range(experiments):
        sq, st, se = sds
        x = points(rng.normal(0, sq, n)[None, :] + rng.normal(0, st, R)[:, None] + rng.normal(0, se, (R, n)))
        if method == "variance-components t":
            iv = replicate_interval(x.tolist(), bounds=(0.0, 1.0))
            lo, hi = iv.low, iv.high
        elif method == "two-level bootstrap":
            B = 500
            ri, qi = rng.integers(0, R, (B, R)), rng.integers(0, n, (B, n))
            means = np.array([x[ri[b]][:, qi[b]].mean() for b in range(B)])
            lo, hi = np.quantile(means, [0.025, 0.975])
        else:  # questions only, replicates pooled
            B = 500
            qi = rng.integers(0, n, (B, n))
            means = x[:, qi].mean(axis=(0, 2))
            lo, hi = np.quantile(means, [0.025, 0.975])
        hits += lo <= target <= hi
    return hits / experiments


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiments", type=int, default=1000)
    ap.add_argument("--questions", type=int, default=200)
    args = ap.parse_args()
    print(f"coverage of 95% intervals, {args.questions} questions (sd of q, t, e per row)")
    print("| R | sd q, t, e | variance-components t | two-level bootstrap | questions only |")
    print("|---|---|---|---|---|")
    for R in (3, 5):
        for sds in REGIMES:
            cells = [
                coverage("variance-components t", R, args.questions, sds, args.experiments, 1),
                coverage("two-level bootstrap", R, args.questions, sds, max(100, args.experiments // 3), 2),
                coverage("questions only", R, args.questions, sds, max(100, args.experiments // 3), 3),
            ]
            print(f"| {R} | {sds} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
