"""Benchmark the search accelerations: the same seeded search with all on and all off.

    python bench/bench_search.py                       # example data, offline defaults: ~45 min, mostly "all off"
    python bench/bench_search.py --rounds 3 -k 4       # a longer search
    python bench/bench_search.py --scripted            # the loop only, with a scripted evaluator
                                                       # whose cost is proportional to the rows trained

"All on": sampling (20%), target selection, cache (cold at the start: a fresh cache folder).
"All off": ``--no-sampling --no-target-selection --no-cache`` (every evaluation from scratch, the
full data searched, every row a processing target). Prints each run's total search time (setup +
rounds, without the final full-data evaluation, which is the same work in both), their ratio
(target: at least 10x), and whether both runs found the same best strategy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_one(args, on: bool, out: Path):
    from autodp_search import Budget, ScriptedEvaluator, SearchConfig, run_search

    if out.exists():
        shutil.rmtree(out)
    cfg = SearchConfig(
        data=args.data, out_dir=str(out), seed=args.seed, k=args.k, budget=Budget(max_rounds=args.rounds),
        sampling=on, target_selection=on, cache=on, eval_preset=args.eval_preset, final=False, quiet=not args.verbose,
        heldout_n=args.heldout,
    )
    ev = None
    if args.scripted:
        # training cost ~ rows trained: both arms when nothing is cached, the candidate only otherwise
        ev = ScriptedEvaluator(seconds_per_row=args.seconds_per_row * (1 if on else 2), memo=on)
    t = time.perf_counter()
    res = run_search(cfg, evaluator=ev)
    secs = time.perf_counter() - t
    return res, secs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "examples" / "medquad_sample.jsonl"))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("-k", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heldout", type=int, default=50)
    p.add_argument("--eval-preset", default="quick")
    p.add_argument("--scripted", action="store_true", help="scripted evaluator (loop overhead and cost model only)")
    p.add_argument("--seconds-per-row", type=float, default=0.002)
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_search"))
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    out = Path(args.out)
    res_on, t_on = run_one(args, True, out / "all_on")
    res_off, t_off = run_one(args, False, out / "all_off")
    same = res_on.best_text.split("steps:", 1)[-1] == res_off.best_text.split("steps:", 1)[-1]
    fig = {
        "data": args.data, "rounds": args.rounds, "k": args.k, "seed": args.seed,
        "evaluator": "scripted" if args.scripted else f"autodp_eval preset {args.eval_preset}",
        "all_on_s": round(t_on, 1), "all_off_s": round(t_off, 1), "ratio": round(t_off / max(t_on, 1e-9), 2),
        # arms trained (memo hits are not); the budget's "finetunes" count them too, so they are equal on and off
        "finetunes_on": res_on.report["budget_used"]["trained"], "finetunes_off": res_off.report["budget_used"]["trained"],
        "same_best": same,
        "best_on": res_on.best.cid if res_on.best else None, "best_off": res_off.best.cid if res_off.best else None,
        "best_on_delta": res_on.best.delta if res_on.best else None,
        "best_off_delta": res_off.best.delta if res_off.best else None,
    }
    print(f"all accelerations on : {t_on:8.1f} s  ({fig['finetunes_on']} fine-tunes trained, best {fig['best_on']} {fig['best_on_delta']})")
    print(f"all accelerations off: {t_off:8.1f} s  ({fig['finetunes_off']} fine-tunes trained, best {fig['best_off']} {fig['best_off_delta']})")
    print(f"ratio off/on: {fig['ratio']:.1f}x (target >= 10x); same best strategy: {'yes' if same else 'no'}")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
