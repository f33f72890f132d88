"""Limits on what an agent sends and is sent (steps, prompt size), the journal of original proposals,
and the prompt defects of issue 16."""

from __future__ import annotations

import json

import pytest

from autodp_search import Budget, ScriptedEvaluator, SearchConfig, run_search
from autodp_search.agents import AgentContext, CandidateView
from autodp_search.profile import safe_rate
from autodp_search.prompts import catalog_from_registry, history_text, search_messages

from .helpers import ScriptedAgent, dp, qa_rows, write_jsonl


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("d") / "qa.jsonl", qa_rows(300))


def cfg(data, out, **kw) -> SearchConfig:
    base = dict(data=str(data), out_dir=str(out), heldout_n=20, final_heldout_n=20, quiet=True,
                budget=Budget(max_rounds=1), sample_fraction=0.5, final=False, profile_k=5)
    base.update(kw)
    return SearchConfig(**base)


def view(cid: str, delta: float | None, rnd: int = 1, status: str = "ok", steps: int = 1) -> CandidateView:
    text = dp(cid, *[f"filter: words(output) >= {i + 2}" for i in range(steps)])
    return CandidateView(rnd, cid, text, status, delta=delta, win_rate=None if delta is None else 0.5 + delta,
                         ci_low=0.4, ci_high=0.6)


def context(history=(), round_=2) -> AgentContext:
    return AgentContext(task="t", round=round_, k=4, k_min=1, k_max=8, columns=(("output", "str"),),
                        profile_text="rows: 100", catalog=catalog_from_registry(), history=tuple(history))


def test_a_strategy_with_too_many_steps_is_invalid_and_reported(data, tmp_path):
    long = dp("long", *[f"filter: words(output) >= {i % 5 + 1}" for i in range(40)])
    agent = ScriptedAgent([[long, dp("ok", "filter: words(output) >= 8")]])
    res = run_search(cfg(data, tmp_path / "r", max_steps=30), evaluator=ScriptedEvaluator(), agent=agent)
    st = {r.cid: r for r in res.records}
    assert st["r1c1"].status == "invalid" and any("agent-too-many-steps" in e for e in st["r1c1"].errors)
    assert agent.repair_requests and agent.repair_requests[0].diagnostics[-1]["code"] == "agent-too-many-steps"
    assert any("--max-steps" in e for e in res.report["agent"]["limits_and_fallbacks"])
    assert st["r1c2"].status == "ok"


def test_the_journal_keeps_every_original_proposal_and_its_repairs(data, tmp_path):
    bad = "dp: 1\nname: bad\nsteps:\n  - filter: nosuchsignal(output) >= 8\n"
    fixed = dp("fixed", "filter: words(output) >= 9")
    agent = ScriptedAgent([[bad]], repairs=[fixed])
    run_search(cfg(data, tmp_path / "r"), evaluator=ScriptedEvaluator(), agent=agent)
    plan = json.loads((tmp_path / "r" / "journal" / "round-0001.plan.json").read_text())
    c = plan["candidates"][0]
    assert c["proposal"] == bad and c["dp_text"] == fixed and c["status"] == "pending"
    assert [a["dp_text"] for a in c["attempts"]] == [bad, fixed]
    assert c["attempts"][0]["diagnostics"] and not c["attempts"][1]["diagnostics"]


def test_the_history_is_summarised_when_the_prompt_would_not_fit():
    hist = [view(f"r1c{i}", 0.01 * i, steps=12) for i in range(1, 31)]
    full = search_messages(context(hist))
    size = sum(len(m["content"]) for m in full)
    events: list[str] = []
    small = search_messages(context(hist), max_chars=size * 2 // 3, events=events)
    text = small[1]["content"]
    assert sum(len(m["content"]) for m in small) <= size * 2 // 3
    assert events and "--llm-max-prompt-chars" in events[0]
    assert "weaker candidates, summarised" in text and "r1c1: score - r0 = +0.010" in text
    assert "Best so far: r1c30" in text and "name: r1c30" in text  # the best is still shown in full
    assert search_messages(context(hist), max_chars=size + 1, events=events) == full


def test_best_so_far_breaks_ties_like_the_search():
    hist = [view("r2c1", 0.1, rnd=2), view("r1c3", 0.1, rnd=1), view("r1c2", 0.1, rnd=1), view("r1c1", -0.1)]
    ctx = context(hist, round_=3)
    assert ctx.best()[0].cid == "r1c2"  # the search: higher score, then earlier round, then cid
    text = history_text(ctx)
    assert "Best so far: r1c2" in text
    assert text.rindex("### r1c2") > text.rindex("### r1c3") > text.rindex("### r2c1")  # best last


def test_a_later_round_after_empty_rounds_is_not_called_the_first():
    assert "first round" in history_text(context(round_=1))
    later = history_text(context(round_=2))
    assert "first round" not in later and "round 2" in later


def test_a_language_of_nearly_every_row_is_not_shown_as_a_rare_one():
    assert safe_rate(996, 1000, 20).text(20) == "all but <20 rows"
    assert safe_rate(4, 1000, 20).text(20) == "<20 rows"
    assert safe_rate(500, 1000, 20).text(20).endswith("(500)")


def test_the_profile_names_echoes_question_with_its_two_arguments(data):
    from autodp_search.data import load_data, make_profile

    text = make_profile(load_data(data).frame, k=20)[0]
    assert "echoes_question(instruction, output)" in text


def test_the_report_shows_original_proposals_with_their_diagnostics(data, tmp_path):
    bad = "dp: 1\nname: bad\nsteps:\n  - filter: nosuchsignal(output) >= 8\n"
    agent = ScriptedAgent([[bad]], repairs=[dp("fixed", "filter: words(output) >= 9")])
    res = run_search(cfg(data, tmp_path / "r"), evaluator=ScriptedEvaluator(), agent=agent)
    assert res.report["proposals"]["r1c1"]["proposal"] == bad
    html = (tmp_path / "r" / "report.html").read_text()
    assert "original proposal" in html and "nosuchsignal" in html and "repair 1" in html


def test_the_backend_spec_of_the_agent():
    from autodp_search.agents import LLMConfig

    local = LLMConfig(model="local:smollm2").backend_spec()
    assert local["kind"] == "local" and local["max_length"] == 8192 and local["memo"] is False
    remote = LLMConfig(model="qwen2.5:7b", base_url="http://127.0.0.1:11434/v1", timeout_s=5, max_retries=1).backend_spec()
    assert remote == {**remote, "kind": "openai", "model": "qwen2.5:7b", "base_url": "http://127.0.0.1:11434/v1",
                      "timeout": 5, "max_retries": 1}
    spec = LLMConfig(model="openai:m@http://h:1/v1").backend_spec()
    assert spec["model"] == "m" and spec["base_url"] == "http://h:1/v1"
