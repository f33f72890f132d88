"""Processing target selection: weak labels, classifier, judge interface."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from autodp_search.signals import signal_frame
from autodp_search.targets import LABELLING_FUNCTIONS, train_selector, weak_labels

from ._synth import synth_frame


@pytest.fixture(scope="module")
def data():
    frame, bad = synth_frame(800, seed=7, bad_share=0.2)
    return frame, bad, signal_frame(frame)


def test_weak_labels_find_planted_rows(data):
    frame, bad, sig = data
    labels, fired = weak_labels(sig)
    assert set(fired) == set(LABELLING_FUNCTIONS)
    assert (labels[bad] == 1).mean() > 0.95
    assert (labels[~bad] == 1).mean() < 0.05
    assert fired["repetitive"].sum() > 0 and fired["heading_only"].sum() > 0 and fired["very_short"].sum() > 0


def test_selector_metrics_and_scores(data):
    frame, bad, sig = data
    ts = train_selector(frame, seed=0, signals=sig)
    m = ts.metrics
    assert m.n_train > 0 and m.n_test > 0 and 0 < m.base_rate < 1
    assert m.precision > 0.9 and m.recall > 0.9
    s = ts.score(frame, signals=sig)
    assert s.dtype == pl.Float64 and len(s) == frame.height
    assert s.min() >= 0 and s.max() <= 1
    assert (s.to_numpy()[bad] > 0.5).mean() > 0.9
    out = ts.add_column(frame, signals=sig)
    assert out.columns == [*frame.columns, "lowq"]
    assert "precision" in ts.summary()


def test_deterministic(data):
    frame, _, sig = data
    a = train_selector(frame, seed=1, signals=sig)
    b = train_selector(frame, seed=1, signals=sig)
    assert a.metrics == b.metrics
    assert np.array_equal(a.score(frame, signals=sig).to_numpy(), b.score(frame, signals=sig).to_numpy())


def test_score_without_precomputed_signals(data):
    frame, _, sig = data
    ts = train_selector(frame.head(300), seed=0)
    s = ts.score(frame.head(50))
    assert len(s) == 50


def test_scripted_judge(data):
    frame, bad, sig = data
    seen = []

    def judge(rows: pl.DataFrame):
        seen.append(rows.height)
        assert set(rows.columns) >= {"instruction", "output"}
        # the judge thinks every answer under 30 words is weak; unsure about one row in ten
        return [
            None if i % 10 == 0 else bool(w < 30)
            for i, w in enumerate(rows["output"].str.count_matches(r"\S+"))
        ]

    ts = train_selector(frame, seed=0, signals=sig, judge=judge, judge_budget=120)
    assert seen == [120]
    assert ts.judge_metrics is not None and ts.judge_metrics.n_test > 0
    assert ts.judge_agreement is not None and 0 <= ts.judge_agreement <= 1
    assert "judge hold-out" in ts.summary()

    with pytest.raises(ValueError, match="judge returned"):
        train_selector(frame, seed=0, signals=sig, judge=lambda rows: [True])
