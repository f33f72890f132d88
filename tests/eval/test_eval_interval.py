"""The interval over replicates x questions: coverage by simulation, and its edge cases (numpy only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autodp_eval import detectable_effect, replicate_interval
from autodp_eval._interval import percentile_bootstrap, t_quantile


def coverage(
    R: int, n: int, sd_question: float, sd_train: float, sd_rest: float, experiments: int, seed: int
) -> float:
    """Share of intervals covering the true mean 0 when x[r, i] = q_i + t_r + e_ri."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(experiments):
        x = (
            rng.normal(0, sd_question, n)[None, :]
            + rng.normal(0, sd_train, R)[:, None]
            + rng.normal(0, sd_rest, (R, n))
        )
        iv = replicate_interval(x.tolist())
        hits += iv.low <= 0.0 <= iv.high
    return hits / experiments


@pytest.mark.parametrize("R", [3, 5])
@pytest.mark.parametrize(
    "sds",
    [
        (0.2, 0.2, 1.0),  # training noise comparable to the questions' spread
        (0.1, 0.5, 1.0),  # training noise dominates: one pair's global loss decides most questions
    ],
)
def test_coverage_is_nominal_at_small_R_with_known_between_replicate_variance(R, sds):
    cov = coverage(R, 100, *sds, experiments=1500, seed=R)
    assert 0.93 <= cov <= 0.97, cov


def test_an_interval_over_questions_alone_undercovers_when_training_varies():
    # what the evaluator did before replicates (and does with R = 1): each replicate's own bootstrap
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(300):
        x = rng.normal(0, 0.1, 100) + rng.normal(0, 0.5) + rng.normal(0, 1.0, 100)
        lo, hi = percentile_bootstrap(list(x), 300, 0, 0.95)
        hits += lo <= 0.0 <= hi
    assert hits / 300 < 0.6


def test_one_replicate_says_it_excludes_training_variance():
    iv = replicate_interval([[1.0, 0.0, 0.5, 1.0, 1.0, 0.0]], bootstrap_samples=500)
    assert iv.replicates == 1 and not iv.training_variance and iv.between_sd is None
    assert "excludes training variance" in iv.method
    assert (iv.low, iv.high) == percentile_bootstrap([1.0, 0.0, 0.5, 1.0, 1.0, 0.0], 500, 0, 0.95)


def test_replicates_missing_questions_bounds_and_spread():
    x = [[1.0, 0.0, None, 1.0], [1.0, 1.0, 0.5, 0.0], [0.5, 1.0, 1.0, 1.0]]
    iv = replicate_interval(x, bounds=(0.0, 1.0))
    assert iv.questions == 3 and iv.replicates == 3 and iv.training_variance  # question 2 left out
    assert iv.estimate == pytest.approx(np.mean([[1, 0, 1], [1, 1, 0], [0.5, 1, 1]]))
    assert 0.0 <= iv.low <= iv.estimate <= iv.high <= 1.0
    assert iv.between_sd == pytest.approx(np.std([2 / 3, 2 / 3, 2.5 / 3], ddof=1))
    same = replicate_interval([[0.3, 0.3], [0.3, 0.3]])
    assert same.low == same.high == pytest.approx(0.3)
    steady = replicate_interval([[0.2, 0.4, 0.9], [0.2, 0.4, 0.9]])  # no training noise: questions only
    assert steady.between_sd == 0.0 and steady.low < 0.5 < steady.high
    assert replicate_interval([[None, None]]).estimate is None


def test_student_t_and_detectable_effect():
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(0.975, 1e9) == pytest.approx(1.95996, abs=1e-4)
    assert t_quantile(0.8, 4) == pytest.approx(0.9410, abs=1e-4)
    assert detectable_effect(0.01, math.inf) == pytest.approx((1.959964 + 0.841621) * 0.01, rel=1e-4)
    assert detectable_effect(0.01, 2) > detectable_effect(0.01, 20)


def test_pooled_folds_weigh_by_questions_and_add_variances():
    from autodp_eval import pool_intervals, replicate_interval

    rng = __import__("numpy").random.default_rng(0)
    parts = [replicate_interval(rng.normal(m, 1.0, size=(3, n)).tolist()) for m, n in ((0.0, 50), (1.0, 150))]
    pooled = pool_intervals(parts)
    assert pooled.estimate == pytest.approx(0.25 * parts[0].estimate + 0.75 * parts[1].estimate)
    assert pooled.se == pytest.approx(((0.25 * parts[0].se) ** 2 + (0.75 * parts[1].se) ** 2) ** 0.5)
    assert pooled.low < pooled.estimate < pooled.high and pooled.replicates == 6 and pooled.questions == 200
    with pytest.raises(ValueError):
        pool_intervals([replicate_interval([[0.1, 0.2, 0.3]])])  # one replicate: no standard error
