"""When the search stops: the first limit reached gives the reason, in one fixed order, and only the
hard limits (STOP file, fine-tunes, wall time) stop it between candidates."""

from __future__ import annotations

from autodp_search.budget import Budget, BudgetState


def test_nothing_reached_stops_nothing():
    s = BudgetState(Budget(max_rounds=3, max_finetunes=10, patience=2, max_agent_calls=5))
    assert s.stop_reason() is None and s.candidate_stop() is None


def test_the_reasons_come_in_one_order_when_several_limits_are_reached(tmp_path):
    stop = tmp_path / "STOP"
    b = Budget(max_rounds=2, max_finetunes=4, max_wall_s=1e9, patience=1, max_agent_calls=3, stop_file=str(stop))
    s = BudgetState(b, rounds_done=2, finetunes=4, agent_calls=3, rounds_since_improvement=1)
    assert s.stop_reason() == "2 rounds done"
    assert s.candidate_stop() == "fine-tune budget spent (4/4)"  # rounds are not a hard limit
    stop.touch()
    assert s.stop_reason() == s.candidate_stop() == f"stop file {stop} found"


def test_soft_limits_stop_rounds_only():
    s = BudgetState(Budget(max_rounds=9, patience=1, max_agent_calls=3), rounds_since_improvement=1, agent_calls=3)
    assert s.stop_reason() == "no improvement for 1 rounds"
    assert s.candidate_stop() is None
    s.rounds_since_improvement = 0
    assert s.stop_reason() == "agent-call budget spent (3/3)"


def test_wall_time_is_a_hard_limit():
    s = BudgetState(Budget(max_rounds=9, max_wall_s=5.0), wall_before_s=6.0)
    assert s.stop_reason() == s.candidate_stop() == "time budget spent (6/5 s)"
