"""The loop's logic with a scripted evaluator: rounds, repairs, de-duplication, budgets, journal, resume."""

from __future__ import annotations

import json

import pytest

from autodp_search import Budget, ScriptedEvaluator, SearchConfig, run_search
from autodp_search.agents import Proposal
from autodp_search.journal import JournalMismatch

from .helpers import ScriptedAgent, dp, qa_rows, write_jsonl


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("d") / "qa.jsonl", qa_rows(300))


def cfg(data, out, **kw) -> SearchConfig:
    budget = kw.pop("budget", Budget(max_rounds=3))
    # the loop's logic on ~130 rows: a privacy floor of 5 rows (the default 20 would score most of
    # these small edits like r0; tests/search/test_privacy.py and test_adversary.py test that floor)
    base = dict(data=str(data), out_dir=str(out), heldout_n=20, final_heldout_n=20, quiet=True, budget=budget,
                sample_fraction=0.5, profile_k=5)
    base.update(kw)
    return SearchConfig(**base)


GOOD = dp("good", "filter: words(output) >= 8", "dedup.exact(output)")
MEH = dp("meh", "filter: words(output) >= 12")
NOOP = dp("noop", "clean.whitespace(output)")  # the test data has clean whitespace: same data as r0
BAD_SYNTAX = "dp: 1\nname: bad\nsteps:\n  - filter: words(output) >=\n"  # no machine-applicable fix: needs the agent
MISSPELT = "dp: 1\nname: typo\nsteps:\n  - filter: wrds(output) >= 8\n  - dedup.exatc(output)\n"


def test_offline_search_writes_everything(data, tmp_path):
    res = run_search(cfg(data, tmp_path / "run"), evaluator=ScriptedEvaluator())
    out = tmp_path / "run"
    for name in ("best.dp", "processed.jsonl", "report.json", "report.html"):
        assert (out / name).exists(), name
    rep = json.loads((out / "report.json").read_text())
    assert rep["stop_reason"] == "3 rounds done"
    assert len({c["round"] for c in rep["candidates"]}) == 3
    assert res.best is not None and res.best.delta >= max(r.delta for r in res.records if r.status == "ok")
    assert (out / "best.dp").read_text() == res.best_text
    # processed data = the best strategy on the full data, internal columns dropped
    first = json.loads((out / "processed.jsonl").read_text().splitlines()[0])
    assert "lowq" not in first and not ({"__rid", "__keep", "__reason"} & set(first))
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3 and "<script" not in html and "http://" not in html.split("</style>")[0]
    assert rep["fidelity"] and "ks" in rep["fidelity"][0]  # the sampling fidelity check, per signal
    for r in range(1, 4):
        assert (out / "journal" / f"round-{r:04d}.json").exists()


def test_the_datas_own_dunder_columns_reach_the_processed_output(tmp_path):
    # only the engine's columns stay behind; a ``__note`` of the data passes through (issue: columns unchanged)
    rows = [dict(r, __note=f"n{i}") for i, r in enumerate(qa_rows(200))]
    data = write_jsonl(tmp_path / "qa.jsonl", rows)
    run_search(cfg(data, tmp_path / "run", budget=Budget(max_rounds=1)), evaluator=ScriptedEvaluator())
    out = [json.loads(x) for x in (tmp_path / "run" / "processed.jsonl").read_text().splitlines()]
    assert out and all(r["__note"].startswith("n") for r in out)
    assert not ({"__rid", "__keep", "__reason", "lowq"} & set(out[0]))


def test_no_final_still_writes_the_best_strategy(data, tmp_path):
    res = run_search(cfg(data, tmp_path / "run", budget=Budget(max_rounds=1), final=False), evaluator=ScriptedEvaluator())
    out = tmp_path / "run"
    assert res.best is not None and (out / "best.dp").read_text() == res.best.dp_text
    assert not (out / "processed.jsonl").exists()  # nothing ran on the full data


def test_invalid_strategies_go_back_for_repair_and_count(data, tmp_path):
    agent = ScriptedAgent([[BAD_SYNTAX, GOOD]], repairs=[BAD_SYNTAX, GOOD])
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1)), evaluator=ScriptedEvaluator(), agent=agent)
    assert len(agent.repair_requests) == 2
    assert agent.repair_requests[0].diagnostics[0]["code"]
    assert [r.attempt for r in agent.repair_requests] == [1, 2]
    recs = {r.cid: r for r in res.records}
    # the repaired r1c1 equals r1c2: evaluated once, reported as a duplicate
    statuses = sorted(r.status for r in recs.values())
    assert statuses == ["duplicate", "ok"]
    assert res.report["budget_used"]["repairs"] == 2
    assert res.report["budget_used"]["agent_calls"] == 3


def test_misspelt_names_are_fixed_without_an_agent_call(data, tmp_path):
    agent = ScriptedAgent([[MISSPELT]])
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1), final=False), evaluator=ScriptedEvaluator(), agent=agent)
    assert agent.repair_requests == []
    assert res.records[0].status == "ok"
    plan = json.loads((tmp_path / "r" / "journal" / "round-0001.plan.json").read_text())
    (cand,) = plan["candidates"]
    assert cand["autofixes"] == 2 and cand["repairs"] == 0 and "words(output) >= 8" in cand["dp_text"] and "dedup.exact(" in cand["dp_text"]
    assert cand["proposed"] == MISSPELT  # nothing the agent wrote is lost
    assert res.report["budget_used"]["agent_calls"] == 1


def test_a_repair_with_a_misspelt_name_is_fixed_without_another_call(data, tmp_path):
    agent = ScriptedAgent([[BAD_SYNTAX]], repairs=[MISSPELT])
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1), final=False), evaluator=ScriptedEvaluator(), agent=agent)
    assert len(agent.repair_requests) == 1 and res.records[0].status == "ok"
    (cand,) = json.loads((tmp_path / "r" / "journal" / "round-0001.plan.json").read_text())["candidates"]
    assert cand["repairs"] == 1 and cand["autofixes"] == 2


def test_repairs_stop_after_three(data, tmp_path):
    agent = ScriptedAgent([[BAD_SYNTAX]], repairs=[BAD_SYNTAX] * 10)
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1), final=False), evaluator=ScriptedEvaluator(),
                     agent=agent)
    assert len(agent.repair_requests) == 3
    assert res.records[0].status == "invalid" and res.records[0].errors


def test_duplicates_are_evaluated_once_and_the_agent_is_told(data, tmp_path):
    same_but_spelled_differently = "dp: 1\nname: other\nsteps:\n  - filter: words(output)>=8\n  - dedup.exact(output, ignore_whitespace=true)\n"
    agent = ScriptedAgent([[GOOD, same_but_spelled_differently], [GOOD, MEH]])
    ev = ScriptedEvaluator(memo=False)
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=2), final=False), evaluator=ev, agent=agent)
    st = {r.cid: (r.status, r.duplicate_of) for r in res.records}
    assert st["r1c2"] == ("duplicate", "r1c1")
    assert st["r2c1"] == ("duplicate", "r1c1")
    assert st["r2c2"][0] == "ok"
    assert ev.calls == 1 + 2  # baseline + r1c1 + r2c2
    notes = agent.contexts[1].notes
    assert any("r1c2 equals r1c1" in n for n in notes)


def test_candidates_with_the_same_data_are_not_evaluated_again(data, tmp_path):
    same_as_good = dp("g2", "dedup.exact(output)", "filter: words(output) >= 8")
    agent = ScriptedAgent([[GOOD, NOOP], [same_as_good, MEH]])
    ev = ScriptedEvaluator(memo=False)
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=2), final=False), evaluator=ev, agent=agent)
    st = {r.cid: (r.status, r.duplicate_of) for r in res.records}
    assert st["r1c2"] == ("duplicate", "r0")
    assert st["r2c1"] == ("duplicate", "r1c1")
    assert st["r2c2"][0] == "ok"
    assert ev.calls == 1 + 2  # baseline, r1c1, r2c2
    # the agent is not told which outputs are equal: r1c2 reads as a candidate scored like r0
    seen = {h.cid: h for h in agent.contexts[1].history}
    assert seen["r1c2"].status == "ok" and seen["r1c2"].duplicate_of is None and seen["r1c2"].delta == 0.0
    assert not any("r0" in n for n in agent.contexts[1].notes)


class _WaveAgent(ScriptedAgent):
    """Proposals per (round, wave)."""

    def __init__(self, script: dict[tuple[int, int], list[str]]):
        super().__init__([[]])
        self.script = script

    def propose(self, context):
        self.contexts.append(context)
        return [Proposal(t, "scripted", "scripted") for t in self.script.get((context.round, context.wave), [])]


@pytest.mark.parametrize("refills", [0, 1])
def test_slots_whose_output_repeated_are_refilled(data, tmp_path, refills):
    agent = _WaveAgent({(1, 0): [GOOD, NOOP, MEH], (1, 1): [MEH, dp("x", "filter: words(output) >= 3")]})
    ev = ScriptedEvaluator(memo=False)
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1), final=False, refills=refills),
                     evaluator=ev, agent=agent)
    st = {r.cid: r.status for r in res.records}
    assert st["r1c2"] == "duplicate"  # NOOP: the unprocessed data again
    if refills == 0:
        assert len(agent.contexts) == 1 and set(st) == {"r1c1", "r1c2", "r1c3"}
        return
    refill = agent.contexts[1]
    assert (refill.round, refill.wave, refill.k) == (1, 1, 1)  # one slot repeated: one more proposal
    assert {h.cid for h in refill.history} == {"r1c1", "r1c2", "r1c3"}
    assert not any("same data" in n for n in refill.notes)
    # the agent's first refill proposal is kept (k=1), numbered after the round's candidates; it
    # equals r1c3 after canonicalisation, so it is not evaluated again
    assert set(st) == {"r1c1", "r1c2", "r1c3", "r1c4"} and st["r1c4"] == "duplicate"
    assert ev.calls == 1 + 2
    assert (tmp_path / "r" / "journal" / "round-0001.w1.plan.json").exists()


def test_context_history_is_group_relative_and_aggregate(data, tmp_path):
    agent = ScriptedAgent([[GOOD, MEH], [MEH]])
    run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=2), final=False), evaluator=ScriptedEvaluator(), agent=agent)
    c2 = agent.contexts[1]
    assert {h.cid for h in c2.history} == {"r1c1", "r1c2"}
    good = next(h for h in c2.history if h.cid == "r1c1")
    assert good.delta == pytest.approx(good.win_rate - 0.5)
    # counts reach the agent coarsened by the boundary (k = 5 here): "<5", "~60", ">125"
    assert good.steps and all(isinstance(s.rows_out, str) and s.rows_out[0] in "<~>" for s in good.steps)
    codes = {code for s in good.steps for code, _ in s.reasons}
    assert codes and codes <= {"step", "exact-duplicate", "near-duplicate", "other"} | {s.step for s in good.steps}
    assert ("exact-duplicate", ) == tuple(c for c, _ in good.steps[1].reasons) or good.steps[1].dropped == "<5"
    assert "wins" in good.feedback and "held-out" in good.feedback


@pytest.mark.parametrize(
    ("budget", "reason"),
    [
        (Budget(max_rounds=10, max_finetunes=3), "fine-tune budget"),
        (Budget(max_rounds=10, patience=1), "no improvement"),
        (Budget(max_rounds=10, max_wall_s=0.0), "time budget"),
    ],
)
def test_budgets_stop_the_search(data, tmp_path, budget, reason):
    agent = ScriptedAgent([[GOOD], [MEH], [dp("x", "filter: words(output) >= 3")], [dp("y", "filter: words(output) >= 4")]])
    res = run_search(cfg(data, tmp_path / "r", budget=budget, final=False), evaluator=ScriptedEvaluator(memo=False), agent=agent)
    assert reason in res.stop_reason


def test_stop_file(data, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "STOP").write_text("")
    res = run_search(cfg(data, out, final=False), evaluator=ScriptedEvaluator())
    assert "stop file" in res.stop_reason and not res.records


class Killed(BaseException):
    pass


class KillMidRound(ScriptedEvaluator):
    """Dies (like a SIGKILL) when asked to evaluate a candidate of a round that already has a finished
    candidate in the journal, from round 2 on: a kill in the middle of a round."""

    def __init__(self, journal):
        super().__init__()
        self.journal = journal
        self.done = 0

    def evaluate(self, candidate, baseline, heldout, verdict=False):
        for r in range(2, 10):
            if not (self.journal / f"round-{r:04d}.json").exists() and list(self.journal.glob(f"cand-r{r}c*.json")):
                raise Killed()
        out = super().evaluate(candidate, baseline, heldout)
        self.done += 1
        return out


def test_resume_after_a_kill_mid_round_redoes_nothing_and_ends_the_same(data, tmp_path):
    ev_full = ScriptedEvaluator()
    full = run_search(cfg(data, tmp_path / "a", seed=5), evaluator=ev_full)
    j = tmp_path / "b" / "journal"
    killer = KillMidRound(j)
    with pytest.raises(Killed):
        run_search(cfg(data, tmp_path / "b", seed=5), evaluator=killer)
    r = next(r for r in range(2, 10) if not (j / f"round-{r:04d}.json").exists())
    assert (j / f"round-{r - 1:04d}.json").exists() and (j / f"round-{r:04d}.plan.json").exists()
    assert list(j.glob(f"cand-r{r}c*.json"))  # killed in the middle of round r
    ev = ScriptedEvaluator()
    resumed = run_search(cfg(data, tmp_path / "b", seed=5, resume=True), evaluator=ev)
    # nothing finished is evaluated again: the resumed run makes exactly the evaluations left
    assert ev.calls == ev_full.calls - killer.done
    assert resumed.best_text == full.best_text
    assert [r.dp_text for r in resumed.records] == [r.dp_text for r in full.records]
    assert [r.delta for r in resumed.records] == [r.delta for r in full.records]


def test_resume_refuses_other_settings(data, tmp_path):
    run_search(cfg(data, tmp_path / "a", budget=Budget(max_rounds=1), final=False), evaluator=ScriptedEvaluator())
    with pytest.raises(JournalMismatch):
        run_search(cfg(data, tmp_path / "a", seed=9, resume=True, final=False), evaluator=ScriptedEvaluator())


def test_switches_change_what_is_searched(data, tmp_path):
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1), sampling=False, target_selection=False,
                         cache=False, final=False), evaluator=ScriptedEvaluator())
    rep = res.report
    assert rep["data"]["search"] == rep["data"]["pool"]
    assert rep["targets"]["enabled"] is False
    assert not (tmp_path / "r" / ".cache").exists()


def test_heldout_tidying_changes_whitespace_only():
    import polars as pl

    from autodp_search.data import tidy_text_columns

    df = pl.DataFrame({"instruction": ["What is X ?  "], "output": ["Key Points\n        - a  b\t c\n   \n\n  d "]})
    out = tidy_text_columns(df)
    assert out["output"][0] == "Key Points\n- a b c\nd"
    assert out["output"][0].split() == df["output"][0].split()
    assert out["instruction"][0] == "What is X ?"


@pytest.mark.parametrize("memo", [True, False])
def test_no_cache_keeps_model_operators_from_their_memo(memo, tmp_path, monkeypatch):
    """``--no-cache`` reuses nothing: a model operator's calls are not memoised (nor read back)."""
    import polars as pl

    from autodp_dsl import compile_text
    from autodp_dsl.types import STR
    from autodp_search.execution import run_strategies
    from stdlib_ops.backends import config

    monkeypatch.setenv("AUTODP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUTODP_LLM", "scripted?memo=true")  # a backend that memoises by default
    monkeypatch.setattr(config, "_defaults", {})
    frame = pl.DataFrame({"instruction": ["q1", "q2"], "output": ["short", "also short"]})
    text = dp("rw", "refine.rewrite(output)")
    strategy = compile_text(text, columns={"instruction": STR, "output": STR}).strategy
    run = run_strategies([strategy], frame, "fp", None, memo=memo)[0]
    assert run.error is None and run.rows_out == 2
    memo_file = tmp_path / "cache" / "model-memo" / "memo.sqlite3"
    assert memo_file.exists() is memo
    if not memo:  # built once per process, like the defaults; the embedder keeps no memo either
        svc = config.services_from_env(memo=False)
        assert svc is not None and svc["model_backend"] is config.services_from_env(memo=False)["model_backend"]
        assert svc["model_backend"].memo is None and svc["embedder"].memo is None


def test_no_cache_services_survive_a_misconfigured_environment(monkeypatch):
    """A bad model configuration fails the model operators that run, not every --no-cache round."""
    from stdlib_ops.backends import config

    monkeypatch.setattr(config, "_defaults", {})
    monkeypatch.delenv("AUTODP_LLM", raising=False)
    monkeypatch.setenv("AUTODP_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # no AUTODP_LLM_MODEL
    svc = config.services_from_env(memo=False)
    assert "model_backend" not in svc and "embedder" in svc
