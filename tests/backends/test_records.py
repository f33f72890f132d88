"""The JSON of reports, budgets and samplings: byte-identical to the stored fixture.

These dicts go into report.json, the journal and the model memo's keys, so a change of a key, its
order or a value's form is a change of format (old memo keys would miss). ``records.json`` holds
them as the code wrote them before their ``to_json`` methods shared ``autodp_backends.records``;
each object here is rebuilt from the fixture's values and must write the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from autodp_backends.records import fields_dict
from autodp_dsl.engine.report import (
    DROPPED_SCHEMA,
    Accounting,
    ExplainNode,
    Explanation,
    RunResult,
    StatRecord,
    StepReport,
)
from autodp_search import budget as budget_module
from autodp_search.budget import Budget, BudgetState
from stdlib_ops.backends.base import Sampling

FIXTURE = Path(__file__).with_name("records.json")


def _stat(d: dict) -> StatRecord:
    return StatRecord(**d)


def _step(d: dict) -> StepReport:
    return StepReport(
        step=d["step"], text=d["text"], kind=d["kind"], key=d["key"], rows_in=d["rows_in"], rows_out=d["rows_out"],
        modified=d["modified"], added=d["added"], dropped=d["dropped_by_reason"], seconds=d["seconds"],
        cache=d["cache"], persisted=d["persisted"], policy=d["policy"], shared=d["shared"],
        stats=[_stat(s) for s in d["statistics"]],
    )


def _accounting(d: dict) -> Accounting:
    return Accounting(rows_in=d["rows_in"], kept=d["kept"], dropped=d["dropped"], quarantined=d["quarantined"],
                      generated=d["generated"], steps=[_step(s) for s in d["steps"]],
                      dropped_ids=pl.DataFrame(schema=DROPPED_SCHEMA))


def _run(d: dict) -> RunResult:
    reasons = [r for r, n in d["quarantine"]["by_reason"].items() for _ in range(n)]
    return RunResult(
        strategy=d["strategy"], frame=pl.DataFrame(), ids=pl.Series("rid", [], pl.UInt64),
        accounting=_accounting(d["accounting"]), quarantine=pl.DataFrame({"reason": reasons}, schema={"reason": pl.String}),
        fingerprint=d["fingerprint"], root_key=d["root_key"], keys=d["keys"], final_key=d["final_key"],
        seconds=d["seconds"], read_seconds=d["read_seconds"], error=d["error"], columns_changed=d["columns_changed"],
    )


def _node(d: dict) -> ExplainNode:
    return ExplainNode(key=d["key"], parent=d["parent"], depth=d["depth"], text=d["text"], kind=d["kind"],
                       labels=d["strategies"], finals=d["final_of"], policy=d["materialise"],
                       policy_reason=d["policy"], cache=d["cache"], stats=[_stat(s) for s in d["statistics"]])


def _explanation(d: dict) -> Explanation:
    return Explanation(root_key=d["root_key"], fingerprint=d["fingerprint"], data=d["data"], rows=d["rows"],
                       quarantined=d["quarantined"], nodes=[_node(n) for n in d["nodes"]],
                       strategies=d["strategies"], cache_dir=d["cache_dir"])


def _budget_state(d: dict, monkeypatch) -> BudgetState:
    monkeypatch.setattr(budget_module.time, "monotonic", lambda: 1000.0)  # wall_s = wall_before_s exactly
    keep = ("rounds_done", "finetunes", "trained", "agent_calls", "repairs", "evaluations", "rounds_since_improvement", "best_delta")
    return BudgetState(Budget(), wall_before_s=d["wall_s"], started=1000.0, **{k: d[k] for k in keep})


def _sampling(d: dict) -> Sampling:
    return Sampling(**{**d, "stop": tuple(d["stop"])})


def _dumps(d) -> str:
    return json.dumps(d, indent=2, ensure_ascii=False)


BUILD = {"run": _run, "explanation": _explanation, "sampling": _sampling, "sampling_with_grammar": _sampling}


@pytest.mark.parametrize("name", [*BUILD, "budget_state"])
def test_every_format_writes_the_stored_bytes(name, monkeypatch):
    stored = json.loads(FIXTURE.read_text(encoding="utf-8"))[name]
    obj = _budget_state(stored, monkeypatch) if name == "budget_state" else BUILD[name](stored)
    assert _dumps(obj.to_dict() if name == "budget_state" else obj.to_json()) == _dumps(stored)


def test_the_fixture_exercises_what_varies():
    """Rounded seconds, a multi-reason drop, a quarantine, a property and the optional grammar key."""
    f = json.loads(FIXTURE.read_text(encoding="utf-8"))
    step = f["run"]["accounting"]["steps"][1]
    assert len(step["dropped_by_reason"]) > 1 and step["dropped"] == sum(step["dropped_by_reason"].values())
    assert f["run"]["quarantine"]["rows"] > 0 and f["explanation"]["shared_nodes"] > 0
    assert "grammar" in f["sampling_with_grammar"] and "grammar" not in f["sampling"]


def test_fields_dict_keeps_the_order_given_and_reads_properties():
    class P:
        b, a = 1, 2

        @property
        def c(self):
            return self.a + self.b

    assert list(fields_dict(P(), "c", "a", "b").items()) == [("c", 3), ("a", 2), ("b", 1)]
