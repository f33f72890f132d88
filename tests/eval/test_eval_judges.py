"""Judges: parsing, the scripted judge, and the pairwise LLM judge against a fake server."""

from __future__ import annotations

import time

import pytest

from autodp_eval import (
    Judge,
    LikelihoodJudge,
    PairwiseLLMJudge,
    ScriptedJudge,
    Verdict,
    parse_judge_reply,
    win_rate,
)
from autodp_eval._judges import JudgeReplyError
from autodp_eval.testing import FakeOpenAIServer, Reply, judge_prompt_parts

from .conftest import item


@pytest.mark.parametrize(
    "text,winner",
    [
        ('{"rationale": "x", "winner": "1"}', "1"),
        ('Sure!\n```json\n{"winner": "2", "rationale": "y"}\n```', "2"),
        ('{"winner": "TIE"}', "tie"),
        ('{"winner": 1}', "1"),
        ("winner: 2 because it is better", "2"),
        ('{"winner": "Answer 1"}', "1"),
    ],
)
def test_parse_judge_reply(text, winner):
    assert parse_judge_reply(text)[0] == winner


@pytest.mark.parametrize("text", ["", None, "I like both", '{"winner": "3"}'])
def test_parse_judge_reply_rejects(text):
    with pytest.raises(JudgeReplyError):
        parse_judge_reply(text)


def test_all_judges_satisfy_the_protocol():
    assert isinstance(LikelihoodJudge(), Judge)
    assert isinstance(ScriptedJudge(["a"]), Judge)
    assert isinstance(PairwiseLLMJudge("m", "http://127.0.0.1:9/v1"), Judge)


def test_scripted_judge_never_raises():
    def rule(it):
        if it.id == "2":
            raise RuntimeError("rule broke")
        return {"0": "a", "1": "tie", "3": "nonsense"}.get(
            it.id, Verdict(id="ignored", winner="b", rationale="r")
        )

    out = ScriptedJudge(rule).judge([item(i) for i in range(5)])
    assert [o.winner for o in out] == ["a", "tie", "failed", "failed", "b"]
    assert out[2].error == "RuntimeError: rule broke"
    assert out[4].id == "4"
    seq = ScriptedJudge(["a", "b"]).judge([item(i) for i in range(3)])
    assert [o.winner for o in seq] == ["a", "b", "failed"]


def test_likelihood_judge_without_arms_fails_items_instead_of_raising():
    out = LikelihoodJudge().judge([item(0)])
    assert out[0].winner == "failed" and "needs both trained arms" in out[0].error


def prefers_good(req):
    """A consistent judge: the answer containing GOOD wins, whatever its position."""
    p = judge_prompt_parts(req)
    one, two = "GOOD" in p["answer_1"], "GOOD" in p["answer_2"]
    w = "1" if one and not two else "2" if two and not one else "tie"
    return f'{{"rationale": "answer {w} says GOOD", "winner": "{w}"}}'


def judge_for(server, **kw):
    kw.setdefault("backoff_s", 0.001)
    kw.setdefault("timeout_s", 5)
    return PairwiseLLMJudge("fake-judge", server.base_url, api_key="k", **kw)


def test_pairwise_asks_both_orders_and_maps_positions_back():
    items = [item(0, a="GOOD a", b="bad b"), item(1, a="bad a", b="GOOD b"), item(2, a="meh", b="meh")]
    with FakeOpenAIServer(prefers_good) as server:
        out = judge_for(server).judge(items)
    assert [o.winner for o in out] == ["a", "b", "tie"]
    assert len(server.requests) == 6
    shown = sorted(
        (judge_prompt_parts(r)["answer_1"], judge_prompt_parts(r)["answer_2"]) for r in server.requests
    )
    assert ("GOOD a", "bad b") in shown and ("bad b", "GOOD a") in shown  # both orders
    assert all(judge_prompt_parts(r)["reference"] == "ref" for r in server.requests)
    assert out[0].details["orders"] == {"ab": "a", "ba": "a"} and out[0].details["position_consistent"]
    assert "[a first -> a]" in out[0].rationale and "[b first -> a]" in out[0].rationale


def test_position_bias_cancels_into_ties():
    with FakeOpenAIServer(lambda req: '{"rationale": "first is best", "winner": "1"}') as server:
        out = judge_for(server).judge([item(i) for i in range(4)])
    assert [o.winner for o in out] == ["tie"] * 4
    assert win_rate(out).win_rate == 0.5
    assert not out[0].details["position_consistent"]


def test_one_order_only_when_asked():
    with FakeOpenAIServer(prefers_good) as server:
        out = judge_for(server, both_orders=False, use_reference=False).judge([item(0, a="GOOD", b="x")])
    assert out[0].winner == "a" and len(server.requests) == 1
    assert judge_prompt_parts(server.requests[0])["reference"] is None


def test_transient_failures_are_retried():
    seen: dict[str, int] = {}

    def flaky(req):
        key = str(req.messages)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 1:
            return Reply.error(503, "overloaded")
        if seen[key] == 2:
            return "I cannot decide"  # unparseable: retried too
        return prefers_good(req)

    with FakeOpenAIServer(flaky) as server:
        out = judge_for(server, max_retries=3).judge([item(0, a="GOOD", b="x"), item(1, a="x", b="GOOD")])
    assert [o.winner for o in out] == ["a", "b"]
    assert out[0].details["attempts"] == {"ab": 3, "ba": 3}
    assert len(server.requests) == 12


def test_persistent_failures_become_failed_verdicts_with_the_error():
    def rule(req):
        if "FAIL" in judge_prompt_parts(req)["question"]:
            raise RuntimeError("backend exploded")
        return prefers_good(req)

    items = [item(0, a="GOOD", b="x"), item(1, question="FAIL me?"), item(2, a="x", b="GOOD")]
    with FakeOpenAIServer(rule) as server:
        out = judge_for(server, max_retries=2).judge(items)
    assert [o.winner for o in out] == ["a", "failed", "b"]
    assert out[1].error_kind == "http-500"
    assert "after 3 attempts" in out[1].error and "backend exploded" in out[1].error
    res = win_rate(out)
    assert res.failures == 1 and res.win_rate == 0.5 and "http-500: 1" in res.feedback


def test_client_errors_are_not_retried():
    with FakeOpenAIServer(prefers_good, api_key="right") as server:
        out = PairwiseLLMJudge("m", server.base_url, api_key="wrong", backoff_s=0.001).judge([item(0)])
    assert out[0].winner == "failed" and out[0].error_kind == "http-401"
    assert out[0].details["attempts"] == {"ab": 1, "ba": 1}


def test_unparseable_replies_fail_after_the_retries():
    with FakeOpenAIServer(lambda req: "both are fine") as server:
        out = judge_for(server, max_retries=1).judge([item(0)])
    assert out[0].winner == "failed" and out[0].error_kind == "unparseable"
    assert len(server.requests) == 4  # 2 orders x (1 + 1 retry)


def test_timeouts_and_dead_servers_fail_cleanly():
    with FakeOpenAIServer(
        lambda req: Reply.text('{"winner": "1"}', delay=1.0)
    ) as server:
        t = time.perf_counter()
        out = judge_for(server, timeout_s=0.2, max_retries=0).judge([item(0)])
        assert time.perf_counter() - t < 3
    assert out[0].winner == "failed" and out[0].error_kind == "timeout"
    with FakeOpenAIServer(lambda req: '{"winner": "tie"}') as server:
        url = server.base_url
    out = PairwiseLLMJudge("m", url, max_retries=1, backoff_s=0.001, timeout_s=2).judge([item(0), item(1)])
    assert [o.error_kind for o in out] == ["connection", "connection"]


@pytest.mark.parametrize(
    ("status", "kind", "calls"),
    [(429, "http-429", 2), (502, "http-502", 2), (408, "http-408", 2), (400, "http-400", 1), (404, "http-404", 1), (409, "http-409", 1)],
)
def test_the_judge_retries_what_the_backends_retry_and_keeps_its_kinds(status, kind, calls):
    """The judge follows autodp_backends' one retry policy (timeouts, connection errors, 408, 429,
    5xx are retried; other statuses fail at once) and reports the kind as http-<status>."""
    with FakeOpenAIServer(lambda req: Reply.error(status, "no")) as server:
        out = judge_for(server, max_retries=1, both_orders=False).judge([item(0)])
        n = len(server.chat_requests)
    assert out[0].winner == "failed" and out[0].error_kind == kind and n == calls
