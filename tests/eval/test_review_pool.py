"""pool_intervals refuses inputs that have no single pooled interval instead of answering wrongly."""

from __future__ import annotations

import pytest

from autodp_eval import pool_intervals, replicate_interval


def _part(level=0.95):
    return replicate_interval([[1, 0, 1, 0], [1, 1, 0, 0]], level=level)


def test_parts_at_different_levels_are_refused_not_pooled_at_the_first_ones():
    with pytest.raises(ValueError, match="level"):
        pool_intervals([_part(0.9), _part(0.99)])


@pytest.mark.parametrize("weights", [[0, 0], [1, -1], [1], [1, float("nan")]])
def test_weights_that_are_not_one_positive_number_per_part_are_a_clear_error(weights):
    with pytest.raises(ValueError, match="weights"):
        pool_intervals([_part(), _part()], weights)


def test_equal_parts_pool_to_the_same_estimate_with_a_smaller_se():
    p = _part()
    pooled = pool_intervals([p, p])
    assert pooled.estimate == pytest.approx(p.estimate)
    assert pooled.se == pytest.approx(p.se / 2**0.5)
