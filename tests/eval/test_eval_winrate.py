from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autodp_eval import Verdict, win_rate


def v(i, w, **kw):
    if w == "failed":
        return Verdict.failed(str(i), "HTTP 500", kw.get("kind", "http-500"))
    return Verdict(id=str(i), winner=w, rationale=kw.get("why", ""))


def test_counts_and_half_ties():
    res = win_rate([v(0, "a"), v(1, "a"), v(2, "tie"), v(3, "b")])
    assert (res.n, res.wins, res.ties, res.losses, res.failures) == (4, 2, 1, 1, 0)
    assert res.win_rate == (2 + 0.5) / 4
    assert res.ci_low <= res.win_rate <= res.ci_high


def test_failures_are_counted_apart_and_reported():
    res = win_rate([v(0, "a"), v(1, "failed"), v(2, "failed", kind="timeout"), v(3, "b")])
    assert res.failures == 2 and res.win_rate == 0.5
    assert res.failure_counts == {"http-500": 1, "timeout": 1}
    assert "judge failures: 2 of 4 questions (http-500: 1, timeout: 1)" in res.feedback


def test_nothing_judged_gives_no_rate():
    res = win_rate([v(0, "failed")])
    assert res.win_rate is None and res.ci_low is None and "n/a" in res.feedback
    assert win_rate([]).win_rate is None


def test_bootstrap_is_seeded_and_interval_shrinks_with_n():
    small = [v(i, "a" if i % 3 else "b") for i in range(30)]
    large = [v(i, "a" if i % 3 else "b") for i in range(600)]
    r1, r2 = win_rate(small, seed=1), win_rate(small, seed=1)
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high)
    r3 = win_rate(large, seed=1)
    assert (r3.ci_high - r3.ci_low) < (r1.ci_high - r1.ci_low)
    assert r3.ci_low > 0.5  # 2/3 wins over 600 questions


def test_all_same_outcome_gives_a_degenerate_interval():
    res = win_rate([v(i, "a") for i in range(10)])
    assert (res.win_rate, res.ci_low, res.ci_high) == (1.0, 1.0, 1.0)


def test_slices_and_rationales_losses_first():
    verdicts = [v(0, "a", why="better"), v(1, "b", why="worse"), v(2, "tie", why="same"), v(3, "a", why="ok")]
    res = win_rate(verdicts, categories=["x", "x", "y", None], feedback_examples=2)
    assert set(res.slices) == {"x", "y", "(none)"}
    assert res.slices["x"].wins == 1 and res.slices["x"].losses == 1 and res.slices["x"].win_rate == 0.5
    assert res.rationales == ["lost: worse", "tie: same"]
    assert "by category:" in res.feedback and "lost: worse" in res.feedback


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "tie", "failed"]), min_size=1, max_size=60))
def test_properties(outcomes):
    verdicts = [v(i, w) for i, w in enumerate(outcomes)]
    res = win_rate(verdicts, bootstrap_samples=200)
    assert res.wins + res.ties + res.losses + res.failures == res.n == len(outcomes)
    if res.win_rate is None:
        assert res.failures == res.n
        return
    assert 0.0 <= res.ci_low <= res.win_rate + 1e-12 and res.win_rate - 1e-12 <= res.ci_high <= 1.0
    swapped = [v(i, {"a": "b", "b": "a"}.get(w, w)) for i, w in enumerate(outcomes)]
    assert abs(win_rate(swapped, bootstrap_samples=200).win_rate - (1 - res.win_rate)) < 1e-12
