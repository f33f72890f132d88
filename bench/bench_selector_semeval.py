"""Does the target selector agree with people? AUC against the human labels of SemEval-2016 CQA (dev).

    python bench/bench_selector_semeval.py            # about 3 min cold on 2 busy cores, seconds warm
    python bench/bench_selector_semeval.py --json out.json --judge-budget 400 --seed 0

Data: ``../shared/data/semeval2016_cqa/semeval2016_cqa_dev.jsonl`` (research use only: read from
there, never copied): 244 forum questions x 10 answers, ``meta.label_good`` = 1 for a Good answer.
The questions are split in two by a hash of ``meta.question_id`` (sha256, even = design half): every
choice (features, judge, budget) was made on the design half; the report half is only scored.

The selector sees the text only (``instruction``, ``output``; no ``meta.*``) and never the human
labels: ``RelevanceJudge`` (MiniLM question-answer relevance) labels ``--judge-budget`` rows of the
design half (whole questions), the classifier learns those labels from cheap features (and, in the
``+ embedding`` arm, the question-answer cosine) and scores every row of the report half. Printed:
the AUC of each low-quality score against "not Good" on the report half, with a 95% interval from
resampling questions, next to single-signal baselines (answer length, word overlap, the judge's own
relevance on every row, the weak-label selector that ``autodp search`` trains today); and the
selector's agreement with its judge (AUC on the judge's held-out questions of the design half, and
on the judge's labels of the whole report half).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "semeval2016_cqa" / "semeval2016_cqa_dev.jsonl"
TARGET_AUC = 0.70


def load(path: Path):
    """(frame with instruction/output only, human 'bad' labels, question ids) from the JSONL file."""
    import numpy as np
    import polars as pl

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    frame = pl.DataFrame({"instruction": [r["instruction"] for r in rows], "output": [r["output"] for r in rows]},
                         schema={"instruction": pl.String, "output": pl.String})
    bad = np.array([1 - int(r["meta"]["label_good"]) for r in rows])
    qid = np.array([r["meta"]["question_id"] for r in rows])
    return frame, bad, qid


def design_half(qid) -> "np.ndarray":  # noqa: F821
    import numpy as np

    return np.array([int(hashlib.sha256(q.encode()).hexdigest(), 16) % 2 == 0 for q in qid])


def question_bootstrap(score, y, qid, reps: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the AUC, resampling whole questions."""
    import numpy as np

    from autodp_search.targets import auc

    rng = np.random.default_rng(seed)
    uq = np.unique(qid)
    rows = {q: np.flatnonzero(qid == q) for q in uq}
    vals = []
    for _ in range(reps):
        idx = np.concatenate([rows[q] for q in rng.choice(uq, size=len(uq), replace=True)])
        a = auc(score[idx], y[idx])
        if a is not None:
            vals.append(a)
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return float(lo), float(hi)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--judge-budget", type=int, default=400, help="rows of the design half the judge labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    path = Path(args.data)
    if not path.is_file():
        print(f"error: {path} not found (the SemEval-2016 CQA dev set lives in ../shared/data/semeval2016_cqa/)",
              file=sys.stderr)
        return 1

    import numpy as np

    from autodp_search.judges import RelevanceJudge, relevance
    from autodp_search.signals import signal_frame
    from autodp_search.targets import auc, text_features, train_selector
    from stdlib_ops.backends.embed import default_embedder

    print("command: python bench/bench_selector_semeval.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    frame, bad, qid = load(path)
    d = design_half(qid)
    design, report = frame.filter(d), frame.filter(~d)
    yd, yr, qr = bad[d], bad[~d], qid[~d]
    print(f"data: {frame.height} answers, {len(np.unique(qid))} questions; design half {design.height} rows "
          f"({len(np.unique(qid[d]))} questions), report half {report.height} rows ({len(np.unique(qr))} questions); "
          f"not-Good share {bad.mean():.3f}")
    embedder = default_embedder()
    judge = RelevanceJudge(embedder)
    fig: dict = {"data": str(path), "judge": judge.describe(), "judge_budget": args.judge_budget, "seed": args.seed,
                 "rows": {"design": design.height, "report": report.height}, "target_auc": TARGET_AUC}
    t = time.perf_counter()
    sig_d, sig_r = signal_frame(design), signal_frame(report)
    fig["seconds_signals"] = round(time.perf_counter() - t, 2)

    arms = {}
    t = time.perf_counter()
    arms["selector (cheap features)"] = train_selector(design, seed=args.seed, judge=judge, signals=sig_d,
                                                       judge_budget=args.judge_budget)
    fig["seconds_judge_and_train"] = round(time.perf_counter() - t, 2)
    arms["selector (cheap + embedding)"] = train_selector(design, seed=args.seed, judge=judge, signals=sig_d,
                                                          judge_budget=args.judge_budget, embedder=embedder)
    arms["weak-label selector (today's)"] = train_selector(design, seed=args.seed, signals=sig_d)

    t = time.perf_counter()
    scores = {name: sel.score(report, signals=sig_r).to_numpy() for name, sel in arms.items()}
    fig["seconds_score_report"] = round(time.perf_counter() - t, 2)
    tf = text_features(report)
    scores["length only (-chars)"] = -sig_r["output.chars"].to_numpy().astype(float)
    scores["word overlap (-qa.overlap)"] = -tf["qa.overlap"].to_numpy()
    cos_r = relevance(embedder, report["instruction"].to_list(), report["output"].to_list())
    scores["relevance alone (-cosine, every row embedded)"] = -cos_r
    judge_r = judge.scores(report)  # the judge's score over the whole report half (no human label)
    scores["the judge on every row"] = judge_r

    print(f"\nreport half: AUC of the low-quality score against 'not Good' (human), 95% interval by question")
    fig["report_auc"] = {}
    for name, s in scores.items():
        a = auc(s, yr)
        lo, hi = question_bootstrap(s, yr, qr, seed=args.seed)
        fig["report_auc"][name] = {"auc": round(a, 4), "ci95": [round(lo, 4), round(hi, 4)]}
        print(f"  {name:<46} {a:.3f}  [{lo:.3f}, {hi:.3f}]")

    # agreement with the judge: its held-out questions (design half), and its labels on the report half
    jl = np.array([np.nan if v is None else float(v) for v in judge(report)])
    known = ~np.isnan(jl)
    print("\nagreement with the judge")
    fig["judge_agreement"] = {}
    for name in ("selector (cheap features)", "selector (cheap + embedding)"):
        sel = arms[name]
        jm = sel.judge_metrics
        a_r = auc(scores[name][known], jl[known].astype(int))
        acc = float(((scores[name][known] > 0.5) == (jl[known] == 1)).mean())
        fig["judge_agreement"][name] = {"heldout_auc": jm.auc, "heldout_f1": jm.f1, "heldout_rows": jm.n_test,
                                        "train_rows": jm.n_train, "report_auc": round(a_r, 4),
                                        "report_accuracy": round(acc, 4), "report_rows": int(known.sum())}
        print(f"  {name:<30} held-out judged rows (design): AUC {jm.auc:.3f}, F1 {jm.f1:.3f} "
              f"(train {jm.n_train}, test {jm.n_test}); report half (judge's confident 80%): AUC {a_r:.3f}, "
              f"accuracy {acc:.3f} ({int(known.sum())} rows)")

    head = fig["report_auc"]["selector (cheap + embedding)"]["auc"]
    cheap = fig["report_auc"]["selector (cheap features)"]["auc"]
    length = fig["report_auc"]["length only (-chars)"]["auc"]
    fig["verdict"] = {"cheap+embedding": head, "cheap": cheap, "length_only": length,
                      "target_met": bool(head >= TARGET_AUC and head > length),
                      "cheap_target_met": bool(cheap >= TARGET_AUC and cheap > length)}
    print(f"\ntarget (AUC >= {TARGET_AUC} and above length-only {length:.3f}): "
          f"cheap + embedding {head:.3f} {'met' if fig['verdict']['target_met'] else 'NOT met'}; "
          f"cheap features only {cheap:.3f} {'met' if fig['verdict']['cheap_target_met'] else 'NOT met'}")
    print(f"timings: signals {fig['seconds_signals']} s, judge + training (cheap arm) {fig['seconds_judge_and_train']} s, "
          f"scoring the report half {fig['seconds_score_report']} s (embeddings are memoised: warm runs are faster)")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
