"""The resume identity holds only what changes results: how the evaluator's work is scheduled
(processes, threads) may differ between sessions of one search."""

from __future__ import annotations

import pytest

from autodp_search import SearchConfig


@pytest.mark.parametrize("overrides", [{"workers": 2}, {"threads": 2}, {"workers": 4, "threads": 1}])
def test_eval_workers_and_threads_are_not_part_of_the_resume_identity(overrides):
    plain = SearchConfig(data="d", out_dir="o")
    scheduled = SearchConfig(data="d", out_dir="o", eval_overrides=overrides)
    assert scheduled.identity() == plain.identity()


def test_an_eval_setting_that_changes_results_still_is():
    plain = SearchConfig(data="d", out_dir="o")
    other = SearchConfig(data="d", out_dir="o", eval_overrides={"workers": 2, "train": {"epochs": 6}})
    assert other.identity() != plain.identity()
    assert other.identity()["eval"][1] == {"train": {"epochs": 6}}
