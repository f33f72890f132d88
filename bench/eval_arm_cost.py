#!/usr/bin/env python3
"""CPU seconds of one (arm, replicate) unit as a worker runs it, by stage, with a cProfile listing.

A worker trains several arms in a row, so the unit measured is the second one this process runs
(the first pays the imports and first-use costs once): the A/A placebo arm of replicate 2 of DATA
against itself, after replicate 1's. CPU time (user + sys, ``time.process_time`` for the profile),
not wall time: the figure holds on a loaded machine. Give a fresh cache directory each run (a
memoised arm is not trained again).

    python bench/eval_arm_cost.py DATA.jsonl --steps 20 --cache-dir /tmp/cost-cache --profile out.prof
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import autodp_eval._evaluate as E  # noqa: E402
from autodp_eval import EvalConfig  # noqa: E402


def cpu() -> tuple[float, float]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime, u.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--steps", type=int, default=20, help="training steps per arm (the screen preset: 300)")
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--profile", help="write the cProfile stats of the measured unit here")
    a = ap.parse_args()
    cfg = EvalConfig.preset("screen", train={"max_steps": a.steps})
    ev = E.Evaluation(a.data, a.data, config=cfg, cache_dir=a.cache_dir)
    ev.pending(1)  # trains the shared tokenizer, as the parent does before its workers start
    stages: dict[str, list[float]] = {}
    for name in ("train_arm", "generate_answers", "score_references"):
        fn = getattr(E, name)

        def timed(*args, _fn=fn, _name=name, **kw):
            u0, s0 = cpu()
            out = _fn(*args, **kw)
            u1, s1 = cpu()
            st = stages.setdefault(_name, [0.0, 0.0])
            st[0] += u1 - u0
            st[1] += s1 - s0
            return out

        setattr(E, name, timed)

    def unit(r: int) -> tuple:
        return (
            ev.rows("placebo", r),
            ev.arm_config("placebo", r),
            str(ev.cache),
            ev.base_train,
            ev.prompts,
            ev.refs,
        )

    E._train_unit(*unit(1))  # the warm-up unit
    stages.clear()
    prof = cProfile.Profile(time.process_time)
    u0, s0 = cpu()
    prof.enable()
    E._train_unit(*unit(2))
    prof.disable()
    u1, s1 = cpu()
    print(
        f"warm unit ({a.steps} steps): {u1 - u0 + s1 - s0:.2f} CPU s (user {u1 - u0:.2f}, sys {s1 - s0:.2f})"
    )
    for k, (u, s) in stages.items():
        print(f"  {k}: {u + s:.2f} CPU s (user {u:.2f}, sys {s:.2f})")
    if a.profile:
        prof.dump_stats(a.profile)
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
