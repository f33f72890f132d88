"""The final verdict's words match what was measured: an A/A placebo is not "dropping rows at random",
and beating the placebo is not an improvement while the win rate against the unprocessed data is not
above 0.5."""

from __future__ import annotations

import pytest

from autodp_search.report import NOT_SHOWN, improvement_shown, render_html


def _fe(low, beats, kind="random-drop", dropped=3):
    return {"win_rate": 0.55, "ci_low": low, "ci_high": 0.7, "wins": 5, "ties": 0, "losses": 4, "n": 9,
            "placebo": {"kind": kind, "dropped": dropped, "beats_placebo": beats, "statement": "placebo: ..."}}


def test_an_aa_placebo_is_not_described_as_dropping_rows_at_random():
    from autodp_search.report import placebo_control

    assert "at random" not in placebo_control({"kind": "a/a", "dropped": 0, "beats_placebo": True})
    assert "other seeds" in placebo_control({"kind": "a/a", "dropped": 0, "beats_placebo": True})
    assert "(3) at random" in placebo_control({"kind": "random-drop", "dropped": 3})


@pytest.mark.parametrize(("low", "beats", "shown"), [
    (0.52, True, True),     # above 0.5 and beats its placebo
    (0.45, True, False),    # beats the placebo, but not shown better than the unprocessed data
    (0.52, None, False),    # better than the unprocessed data, no better than dropping rows at random
    (0.52, False, False),
    (None, True, False),
])
def test_an_improvement_needs_both_the_interval_above_one_half_and_the_placebo_beaten(low, beats, shown):
    assert improvement_shown(_fe(low, beats)) is shown


def test_without_a_placebo_the_interval_alone_decides():
    assert improvement_shown({"ci_low": 0.51, "placebo": None}) is True
    assert improvement_shown({"ci_low": 0.49}) is False


def test_the_report_says_what_the_placebo_was_and_gives_the_verdict():
    aa = render_html({"final": {"eval": _fe(0.45, True, kind="a/a", dropped=0), "rows_in": 3, "rows_out": 3},
                      "data": {"path": "d.jsonl"}, "candidates": [], "search": {}})
    assert "dropping as many rows (0) at random" not in aa and "A/A placebo" in aa
    assert NOT_SHOWN in aa  # beats an A/A placebo, but the interval reaches below 0.5
    shown = render_html({"final": {"eval": _fe(0.52, True), "rows_in": 3, "rows_out": 3},
                         "data": {"path": "d.jsonl"}, "candidates": [], "search": {}})
    assert "dropping as many rows (3) at random" in shown and NOT_SHOWN not in shown
