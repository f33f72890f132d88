"""Does the target selector agree with people? AUC against the human labels of SemEval-2016 CQA (dev).

    python bench/bench_selector_semeval.py            # about 3 min cold on 2 busy cores, seconds warm
    python bench/bench_selector_semeval.py --json out.json --judge-budget 400 --seed 0

Data: ``../shared/data/semeval2016_cqa/semeval2016_cqa_dev.jsonl`` (research use only: read from
there, never copied): 244 forum questions x 10 answers, ``meta.label_good`` = 1 for a Good answer.
The questions are split in two by a hash of ``meta.question_id`` (sha256, even = design half): every
choice (features, judge, budget) was made on the design half; the report half is only scored.

The selector sees the text only (``instruction``, ``output``; no ``meta.*``) and never the human
labels: ``judges.OfflineJudge`` (MiniLM question-answer relevance and consensus plus text cues)
labels ``--judge-budget`` rows of the design half (whole questions), the classifier learns those
labels from cheap features (and, in the ``+ embedding`` arms, the question-answer cosine) and
scores every row. The headline arm, chosen on the design half before the report half was scored, is
"selector (cheap + embedding)" with the full judge. Printed: the AUC of each low-quality score
against "not Good" on the report half, with a 95% interval from resampling questions, and on the
design half's rows the judge did not see; next to single-signal baselines (answer length, word
overlap, relevance on every row, the judge on every row, the weak-label selector that
``autodp search`` trains today); and the selector's agreement with its judge (AUC on the judge's
held-out questions of the design half, and on the judge's labels of the whole report half).
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
HEAD = "selector (cheap + embedding)"


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


def design_half(qid):
    """True for the rows whose question is in the design half (sha256 of the question id is even)."""
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

    from autodp_search.judges import OfflineJudge, relevance
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
    judge = OfflineJudge(embedder)
    rel_judge = OfflineJudge(embedder, parts=("relevance", "thread"))
    fig: dict = {"data": str(path), "judge": judge.describe(), "judge_budget": args.judge_budget, "seed": args.seed,
                 "rows": {"design": design.height, "report": report.height}, "target_auc": TARGET_AUC}
    t = time.perf_counter()
    sig_d, sig_r = signal_frame(design), signal_frame(report)
    fig["seconds_signals"] = round(time.perf_counter() - t, 2)

    def trained(j, emb):
        return train_selector(design, seed=args.seed, judge=j, signals=sig_d, judge_budget=args.judge_budget,
                              embedder=emb)

    arms = {}
    t = time.perf_counter()
    arms[HEAD] = trained(judge, embedder)
    fig["seconds_judge_and_train"] = round(time.perf_counter() - t, 2)
    arms["selector (cheap features)"] = trained(judge, None)
    arms["selector (cheap + embedding), relevance judge"] = trained(rel_judge, embedder)
    arms["selector (cheap features), relevance judge"] = trained(rel_judge, None)
    arms["weak-label selector (today's)"] = train_selector(design, seed=args.seed, signals=sig_d)

    t = time.perf_counter()
    scores = {name: (sel.score(design, signals=sig_d).to_numpy(), sel.score(report, signals=sig_r).to_numpy())
              for name, sel in arms.items()}
    fig["seconds_score_both_halves"] = round(time.perf_counter() - t, 2)
    for part, sig in (("design", sig_d), ("report", sig_r)):
        f = design if part == "design" else report
        i = 0 if part == "design" else 1
        tf = text_features(f)
        extra = {
            "length only (-chars)": -sig["output.chars"].to_numpy().astype(float),
            "word overlap (-qa.overlap)": -tf["qa.overlap"].to_numpy(),
            "relevance alone (-cosine, every row embedded)": -relevance(embedder, f["instruction"].to_list(),
                                                                        f["output"].to_list()),
            "the judge on every row (no classifier)": judge.scores(f),
        }
        for name, v in extra.items():
            scores.setdefault(name, [None, None])
            scores[name] = list(scores[name])
            scores[name][i] = v
    # rows of the design half that no judge saw (the judges pick the same questions for one seed)
    seen = np.zeros(design.height, dtype=bool)
    seen[arms[HEAD].judged_rows] = True
    unseen = ~seen

    print(f"\nAUC of the low-quality score against 'not Good' (human labels); report half with a 95% interval "
          f"by question; design half on its {int(unseen.sum())} rows the judge did not see")
    fig["report_auc"], fig["design_auc_unjudged"] = {}, {}
    for name, (sd, sr) in scores.items():
        a = auc(sr, yr)
        lo, hi = question_bootstrap(sr, yr, qr, seed=args.seed)
        ad = auc(sd[unseen], yd[unseen])
        fig["report_auc"][name] = {"auc": round(a, 4), "ci95": [round(lo, 4), round(hi, 4)]}
        fig["design_auc_unjudged"][name] = round(ad, 4)
        print(f"  {name:<48} report {a:.3f} [{lo:.3f}, {hi:.3f}]   design {ad:.3f}")

    # agreement with the judge: its held-out questions (design half), and its labels on the report half
    jl = np.array([np.nan if v is None else float(v) for v in judge(report)])
    known = ~np.isnan(jl)
    print("\nagreement with the judge (full offline judge)")
    fig["judge_agreement"] = {}
    for name in (HEAD, "selector (cheap features)"):
        sel = arms[name]
        jm = sel.judge_metrics
        sr = scores[name][1]
        a_r = auc(sr[known], jl[known].astype(int))
        acc = float(((sr[known] > 0.5) == (jl[known] == 1)).mean())
        fig["judge_agreement"][name] = {"heldout_auc": jm.auc, "heldout_f1": jm.f1, "heldout_rows": jm.n_test,
                                        "train_rows": jm.n_train, "report_auc": round(a_r, 4),
                                        "report_accuracy": round(acc, 4), "report_rows": int(known.sum())}
        print(f"  {name:<30} held-out judged questions (design): AUC {jm.auc:.3f}, F1 {jm.f1:.3f} "
              f"(train {jm.n_train}, test {jm.n_test} rows); report half (judge's confident 80%): AUC {a_r:.3f}, "
              f"accuracy {acc:.3f} ({int(known.sum())} rows)")

    head = fig["report_auc"][HEAD]["auc"]
    cheap = fig["report_auc"]["selector (cheap features)"]["auc"]
    length = fig["report_auc"]["length only (-chars)"]["auc"]
    fig["verdict"] = {"cheap+embedding": head, "cheap": cheap, "length_only": length,
                      "target_met": bool(head >= TARGET_AUC and head > length),
                      "cheap_target_met": bool(cheap >= TARGET_AUC and cheap > length)}
    print(f"\ntarget (AUC >= {TARGET_AUC} and above length-only {length:.3f}): "
          f"cheap + embedding {head:.3f} {'met' if fig['verdict']['target_met'] else 'NOT met'}; "
          f"cheap features only {cheap:.3f} {'met' if fig['verdict']['cheap_target_met'] else 'NOT met'}")
    print(f"timings: signals {fig['seconds_signals']} s, judge + training (cheap arm) {fig['seconds_judge_and_train']} s, "
          f"scoring both halves, 5 arms {fig['seconds_score_both_halves']} s (embeddings are memoised: warm runs are faster)")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
