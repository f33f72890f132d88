#!/usr/bin/env python3
"""MedQuAD: does the evaluator tell clean training data from deliberately corrupted data?

1,000 training pairs and 200 held-out questions are sampled from MedQuAD with a fixed seed. The
clean arm trains on the 1,000 pairs as they are; the corrupted arm on the same pairs with 30% of
the answers replaced by junk: half heading-only (the question restated as a heading, like
MedQuAD's broken scrapes), half an answer duplicated from another question. Both arms are trained
with one recipe, answer the held-out questions and are judged; the clean arm's win rate, its
bootstrap interval and the wall time of each stage are printed.

    python bench/eval_medquad.py                        # the embedded default recipe (preset "tiny")
    python bench/eval_medquad.py --candidate filtered    # junk rows dropped instead of repaired
    python bench/eval_medquad.py --json out.json         # also write the full EvalResult

A fresh temporary cache is used unless --cache-dir is given, so every stage is timed cold.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autodp_eval import EvalConfig, evaluate, normalize_prompt, prompt_text  # noqa: E402
from autodp_eval.testing import corrupt_rows  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from eval_null import parse_overrides  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "medquad" / "medquad.jsonl"


def sample(path: Path, n_train: int, n_heldout: int, seed: int) -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        r["category"] = (r.get("meta") or {}).get("qtype") or "unknown"
        r.pop("meta", None)
    random.Random(seed).shuffle(rows)
    heldout, seen = [], set()
    rest = []
    for r in rows:
        k = normalize_prompt(prompt_text(r["instruction"], r.get("input")))
        if len(heldout) < n_heldout and k not in seen:
            heldout.append(r)
            seen.add(k)
        else:
            rest.append(r)
    train = [r for r in rest if normalize_prompt(prompt_text(r["instruction"], r.get("input"))) not in seen][
        :n_train
    ]
    return train, heldout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-heldout", type=int, default=200)
    ap.add_argument("--corrupt", type=float, default=0.3, help="fraction of answers replaced by junk")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="config override, e.g. --set train.max_steps=400 --set train.tiny.hidden_size=192",
    )
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the EvalResult here")
    ap.add_argument(
        "--candidate",
        choices=["clean", "filtered"],
        default="clean",
        help="clean: the 1,000 pairs as they are; filtered: the corrupted copy with its junk rows "
        "dropped (what a perfect cleaning strategy would return, 700 rows)",
    )
    ap.add_argument("--reverse", action="store_true", help="also evaluate corrupted (candidate) vs clean")
    args = ap.parse_args(argv)

    config = EvalConfig.preset(args.preset, **parse_overrides(args.set))

    t0 = time.perf_counter()
    clean, heldout = sample(args.data, args.n_train, args.n_heldout, args.seed)
    corrupted, changed = corrupt_rows(clean, args.corrupt, seed=args.seed + 1)
    if args.candidate == "filtered":
        junk = set(changed)
        clean = [r for i, r in enumerate(corrupted) if i not in junk]
    print(
        f"data: {len(corrupted)} training pairs, {len(heldout)} held-out questions, {len(changed)} answers "
        f"corrupted; candidate: {args.candidate} ({len(clean)} rows); sampled in {time.perf_counter() - t0:.1f} s"
    )
    print("recipe:", json.dumps(config.train.model_dump(mode="json"), separators=(",", ":")))

    with tempfile.TemporaryDirectory(prefix="eval-medquad-") as tmp:
        cache = args.cache_dir or Path(tmp)

        def log(msg: str) -> None:
            print(f"  [{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

        res = evaluate(clean, corrupted, heldout, config, cache_dir=cache, log=log)
        t = res.timings
        print()
        print(res.summary())
        judge_share = t.get("judge", 0.0) / 2
        for arm, stages in (("clean (candidate)", "candidate"), ("corrupted (baseline)", "baseline")):
            total = sum(t.get(f"{s}_{stages}", 0.0) for s in ("train", "generate", "score")) + judge_share
            print(
                f"one arm, {arm}: train {t.get(f'train_{stages}', 0):.1f} s + generate "
                f"{t.get(f'generate_{stages}', 0):.1f} s + judge (reference scoring "
                f"{t.get(f'score_{stages}', 0):.1f} s + half of verdicts {judge_share:.1f} s) = {total:.1f} s"
            )
        excl = res.ci_low is not None and (res.ci_low > 0.5 or (res.ci_high or 1) < 0.5)
        print(
            f"clean-arm win rate {res.win_rate:.3f}, {res.ci_level:.0%} CI [{res.ci_low:.3f}, {res.ci_high:.3f}]: "
            f"{'excludes' if excl else 'does NOT exclude'} 50%"
        )
        if args.json:
            args.json.write_text(res.model_dump_json(indent=1))
        if args.reverse:
            rev = evaluate(corrupted, clean, heldout, config, cache_dir=cache, log=log)
            print(
                f"reverse (corrupted as candidate): win rate {rev.win_rate:.3f} "
                f"[{rev.ci_low:.3f}, {rev.ci_high:.3f}]"
            )
    print(f"total wall time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
