"""Distribution-preserving sampling."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from autodp_search.sampling import kmeans, ks_distance, sample
from autodp_search.signals import signal_frame

from ._synth import synth_frame


@pytest.fixture(scope="module")
def data():
    frame, bad = synth_frame(1000, seed=5)
    return frame, bad, signal_frame(frame)


def test_size_order_rids_and_determinism(data):
    frame, _, sig = data
    a = sample(frame, fraction=0.2, seed=3, signals=sig)
    b = sample(frame, fraction=0.2, seed=3, signals=sig)
    c = sample(frame, fraction=0.2, seed=4, signals=sig)
    assert a.frame.height == 200
    assert a.frame.equals(b.frame)
    assert not a.frame.equals(c.frame)
    rids = a.frame["__rid"].to_numpy()
    assert (np.diff(rids) > 0).all()  # original order, no repeats
    assert a.frame.equals(frame[a.indices])


def test_labels_stratified_exactly(data):
    frame, bad, sig = data
    labels = pl.Series(bad)
    s = sample(frame, fraction=0.2, seed=0, labels=labels, signals=sig)
    share_full = bad.mean()
    share_sample = bad[s.indices].mean()
    # proportional allocation per label x cluster stratum: off by at most a row per stratum
    assert abs(share_sample - share_full) * len(s.indices) <= s.strata
    s2 = sample(
        frame, fraction=0.2, seed=0, labels=pl.Series(bad.astype(float) * 0.9), signals=sig
    )  # float: cut at 0.5
    assert s2.frame.height == 200


def test_fidelity_report(data):
    frame, _, sig = data
    s = sample(frame, fraction=0.2, seed=0, signals=sig)
    names = {f.signal for f in s.fidelity}
    assert "output.chars" in names
    assert all(0 <= f.ks <= 1 and 0 <= f.ks_uniform <= 1 for f in s.fidelity)
    rep = s.report()
    assert "KS" in rep and "max" in rep and "output.chars" in rep
    assert s.max_ks < 0.15


def test_tiny_inputs():
    frame, _ = synth_frame(30, seed=1)
    s = sample(frame, fraction=0.2, seed=0)
    assert s.frame.height == 30  # min(len, 50)
    frame, _ = synth_frame(120, seed=1)
    assert sample(frame, fraction=0.2, seed=0).frame.height == 50
    empty = frame.head(0)
    assert sample(empty, fraction=0.2).frame.height == 0


def test_embeddings_flag_with_stub_embedder(data):
    frame, _, sig = data

    def embed(texts):
        return np.array([[len(t) % 7, t.count("e")] for t in texts], dtype=float)

    s = sample(frame, fraction=0.1, seed=0, signals=sig, use_embeddings=True, embedder=embed)
    assert s.frame.height == 100 and s.info["embeddings"]


def test_ks_and_kmeans():
    a = np.arange(100.0)
    assert ks_distance(a, a) == 0.0
    assert ks_distance(a, a + 1000) == 1.0
    x = (
        np.vstack([np.zeros((50, 2)), np.ones((50, 2)) * 10])
        + np.random.default_rng(0).normal(size=(100, 2)) * 0.1
    )
    lab = kmeans(x, 2, seed=0)
    assert len(set(lab[:50])) == 1 and len(set(lab[50:])) == 1 and lab[0] != lab[99]
