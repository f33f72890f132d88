#!/usr/bin/env python3
"""Does the evaluator agree with people? (issue 11) -- SemEval-2016 CQA forum answers, human labels.

``../shared/data/semeval2016_cqa/semeval2016_cqa_dev.jsonl``: 2,440 answers to 244 questions, each
labelled Good / PotentiallyUseful / Bad by annotators (``meta.label_good``). Research use only: read
from ``../shared``, never copied into the repository; the bench exits 0 with a message when it is absent.

4-fold cross-fitting over the questions (fold = a hash of the question id): each fold's questions
are held out once, the others' answers are the training data. Per fold, against the unprocessed
answers (every label):

* **keep-Good** (only the Good answers) against its placebo (as many random rows dropped);
* **keep-Bad** (only the Bad answers) against its placebo;
* keep-Good against a **length-matched placebo**: as many rows kept, drawn at random within answer-
  length deciles in the proportions keep-Good keeps them (Good answers are longer; length alone
  separates the labels at AUC 0.62), so what is left is what the labels add beyond length.

References: the default rule, without the labels -- one reference per held-out question, its first
answer (``comment_position``), as ``split_heldout`` takes the first row of a question -- or, with
``--references good``, a trusted set: the question's first Good answer (questions without one are
left out). The folds' intervals are pooled (weighted by questions, Satterthwaite df). Targets: keep-
Good beats its placebo and keep-Bad loses to its placebo, both intervals excluding 0.5.

Every (arm, replicate) is memoised (default ``.autodp/eval-semeval``): an interrupted run resumes.

    python bench/eval_semeval.py --estimate-only
    python bench/eval_semeval.py --replicates 2 --json semeval.json
    python bench/eval_semeval.py --references good
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from eval_null import parse_overrides, steps_per_arm  # noqa: E402

from autodp_eval import EvalConfig, Evaluation, pool_intervals  # noqa: E402

SEMEVAL = REPO.parent / "shared" / "data" / "semeval2016_cqa" / "semeval2016_cqa_dev.jsonl"
FOLDS = 4
SEC_PER_STEP = 0.15


def load() -> list[dict]:
    out = []
    for line in SEMEVAL.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            m = r["meta"]
            out.append(
                {
                    "instruction": r["instruction"],
                    "input": r.get("input") or "",
                    "output": r["output"],
                    "category": m.get("category"),
                    "qid": m["question_id"],
                    "pos": int(m.get("comment_position") or 0),
                    "good": int(m["label_good"]),
                    "label": m["label"],
                }
            )
    return out


def fold_of(qid: str) -> int:
    return int(hashlib.sha256(qid.encode()).hexdigest(), 16) % FOLDS


def train_rows(rows: list[dict]) -> list[dict]:
    return [{k: r[k] for k in ("instruction", "input", "output", "category")} for r in rows]


def length_matched(base: list[dict], kept: list[dict], seed: str) -> list[dict]:
    """As many rows of ``base`` as ``kept`` has, drawn at random within answer-length deciles of
    ``base`` in the proportions ``kept`` has them (the original order kept)."""
    lengths = sorted(len(r["output"].split()) for r in base)
    cuts = [lengths[int(len(lengths) * q / 10)] for q in range(1, 10)]

    def decile(r: dict) -> int:
        n = len(r["output"].split())
        return sum(n >= c for c in cuts)

    want: dict[int, int] = {}
    for r in kept:
        want[decile(r)] = want.get(decile(r), 0) + 1
    by_bin: dict[int, list[int]] = {}
    for i, r in enumerate(base):
        by_bin.setdefault(decile(r), []).append(i)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for b, n in want.items():
        pool = by_bin.get(b, [])
        chosen.update(rng.sample(pool, min(n, len(pool))))
    return [r for i, r in enumerate(base) if i in chosen]


def fold_evals(rows: list[dict], f: int, cfg: EvalConfig, refs: str, cache: Path) -> dict[str, Evaluation]:
    train = [r for r in rows if fold_of(r["qid"]) != f]
    held_q: dict[str, list[dict]] = {}
    for r in rows:
        if fold_of(r["qid"]) == f:
            held_q.setdefault(r["qid"], []).append(r)
    held = []
    for qid in sorted(held_q):
        answers = sorted(held_q[qid], key=lambda r: r["pos"])
        if refs == "good":
            answers = [r for r in answers if r["good"]]
        if answers:
            held.append(answers[0])
    base = train_rows(train)
    good = train_rows([r for r in train if r["good"]])
    bad = train_rows([r for r in train if r["label"] == "Bad"])
    held = train_rows(held)
    lm = length_matched(base, good, f"length:{f}")
    ck = cfg.with_overrides(train={"seed": cfg.train.seed + 100 * f}, placebo_seed=cfg.placebo_seed + 100 * f)
    return {
        "keep-Good vs placebo": Evaluation(good, base, held, ck, cache, placebo=True),
        "keep-Bad vs placebo": Evaluation(bad, base, held, ck, cache, placebo=True),
        "keep-Good vs length-matched": Evaluation(good, lm, held, ck, cache, placebo=False),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--references", choices=["first", "good"], default="first")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--replicates", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="config override")
    ap.add_argument("--cache-dir", type=Path, default=REPO / ".autodp" / "eval-semeval")
    ap.add_argument("--estimate-only", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not SEMEVAL.is_file():
        print(f"{SEMEVAL} not found (the shared SemEval copy, research use only): nothing to measure")
        return 0
    overrides = parse_overrides(args.set)
    overrides.setdefault("generate", {}).setdefault("enabled", False)
    cfg = EvalConfig.preset(args.preset, **overrides)
    rows = load()
    folds = [fold_evals(rows, f, cfg, args.references, args.cache_dir) for f in range(FOLDS)]

    seen: set[tuple[str, int]] = set()
    todo = 0
    for evs in folds:
        for ev in evs.values():
            for name, r in ev.pending(args.replicates):
                key = (ev.fp["candidate" if name == "candidate" else "baseline"] + name, r + ev.config.train.seed)
                if name == "placebo" or key not in seen:
                    seen.add(key)
                    todo += 1
    steps = steps_per_arm(cfg, 1800)
    print(
        f"SemEval dev: {len(rows)} answers, {len({r['qid'] for r in rows})} questions, {FOLDS} folds, references "
        f"{args.references}, preset {args.preset}, {args.replicates} replicates"
    )
    print(
        f"CPU estimate: about {todo} (arm, replicate) units left to train x ({steps} steps x {SEC_PER_STEP} s/step"
        f" + 4 s) = {todo * (steps * SEC_PER_STEP + 4) / 60:.0f} CPU-minutes (memo: {args.cache_dir})",
        flush=True,
    )
    if args.estimate_only:
        return 0

    t0 = time.perf_counter()
    parts: dict[str, list] = {}
    for f, evs in enumerate(folds):
        for label, ev in evs.items():
            res = ev.run(args.replicates)
            if res.placebo is not None:
                parts.setdefault(label, []).append(res.placebo.candidate_vs_placebo)
                parts.setdefault(label.replace("vs placebo", "placebo band"), []).append(res.placebo.band)
                parts.setdefault(label.replace("vs placebo", "vs unprocessed"), []).append(res.contrast)
            else:
                parts.setdefault(label, []).append(res.contrast)
            print(f"  fold {f} {label}: win {res.win_rate:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = {}
    for label, contrasts in parts.items():
        win = pool_intervals([c.win for c in contrasts], bounds=(0.0, 1.0))
        nll = pool_intervals([c.nll for c in contrasts])
        out[label] = {"win": win.model_dump(mode="json"), "nll": nll.model_dump(mode="json")}
        side = "above 0.5" if win.low > 0.5 else "below 0.5" if win.high < 0.5 else "contains 0.5"
        print(
            f"{label:32s} win {win.estimate:.3f} [{win.low:.3f}, {win.high:.3f}] ({side}); NLL diff "
            f"{nll.estimate:+.4f} [{nll.low:+.4f}, {nll.high:+.4f}]; {win.replicates} trained pairs, "
            f"{win.questions} question-scores"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"references": args.references, "replicates": args.replicates,
                 "config": cfg.model_dump(mode="json"), "results": out},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
