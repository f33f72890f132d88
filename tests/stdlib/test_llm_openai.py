"""Model-backed operators end to end over real HTTP: the ``openai`` client against a fake
OpenAI-compatible server on 127.0.0.1 that answers, fails (5xx), hangs past the client's timeout,
rate-limits and returns malformed output. The run finishes, failures are counted by kind, and no
row is lost."""

from __future__ import annotations

import json

import polars as pl
import pytest

from autodp_dsl.ir import Assign, BinOp, Call, Col, Lit, OpStep, Strategy, Where
from autodp_dsl.lower import Context, lower_strategy
from autodp_dsl.ops import ROW_ID, registry
from stdlib_ops.backends import ConfigError, OpenAIBackend, from_config
from stdlib_ops.backends.testing import FakeOpenAIServer, FakeRequest, Reply
from stdlib_ops.generation import ORIGIN
from stdlib_ops.optimization import REWRITE_SYSTEM
from stdlib_ops.scoring import QUALITY_SCHEMA, QUALITY_SYSTEM

OUTPUTS = ["good one", "bad one", "FAIL", "SLOW", "GARBLED", "bad but unlucky", "FLAKY", "good two"]


def data() -> pl.LazyFrame:
    return pl.LazyFrame({"instruction": [f"question {i}" for i in range(len(OUTPUTS))], "output": OUTPUTS})


def response_of(req: FakeRequest) -> str:
    text = req.last_user
    return text.split("RESPONSE:\n", 1)[1].split("\n\n", 1)[0]


class Handler:
    """Judge and rewriter with scripted misbehaviour per row."""

    def __init__(self):
        self.flaky_seen = 0

    def __call__(self, req: FakeRequest):
        if req.system == QUALITY_SYSTEM:
            out = response_of(req)
            if out == "FAIL":
                return Reply.error(500, "the judge crashed")
            if out == "SLOW":
                return Reply.hang(5.0)
            if out == "GARBLED":
                return "I would rather not say."
            if out == "FLAKY":
                self.flaky_seen += 1
                if self.flaky_seen == 1:
                    return Reply.error(503, "warming up")
                return '{"score": 9}'
            return '{"score": 2}' if out.startswith("bad") else '{"score": 8}'
        if req.system == REWRITE_SYSTEM:
            text = req.last_user.split("TO REWRITE:\n", 1)[1]
            if "unlucky" in text:
                return Reply.error(502, "bad gateway")
            return "Rewritten answer: " + text.replace("bad", "better")
        return Reply.error(400, "unexpected prompt")


def backend(srv: FakeOpenAIServer, **kw) -> OpenAIBackend:
    # a timeout well above a loaded machine's reply time and well below the hang (5 s): only SLOW times out
    opts = {"timeout": 1.5, "max_retries": 1, "malformed_retries": 1, "backoff_base": 0.01, "memo": False, "concurrency": 4}
    opts.update(kw)
    return OpenAIBackend("fake-judge", srv.base_url, api_key="test-key", **opts)


def quality() -> Call:
    return Call("quality", (Col("instruction"), Col("output")))


def gated_strategy() -> Strategy:
    return Strategy("e2e", (
        Assign("q", quality()),
        Where(BinOp("<", Col("q"), Lit(0.5)), (OpStep("refine.rewrite", (Col("output"),), (("goal", "accurate, complete, plain language"),)),)),
    ))


def test_end_to_end_with_failures_timeouts_and_malformed_output():
    with FakeOpenAIServer(Handler()) as srv:
        b = backend(srv)
        ctx = Context(registry(), services={"model_backend": b})
        out = lower_strategy(gated_strategy(), data(), ctx, keep_internal=True).collect()

    # no row lost, ids preserved, order kept
    assert out.height == len(OUTPUTS)
    assert out[ROW_ID].to_list() == list(range(len(OUTPUTS)))
    assert out["q"].to_list() == [7 / 9, 1 / 9, None, None, None, 1 / 9, 8 / 9, 7 / 9]
    assert out["output"].to_list() == ["good one", "better one", "FAIL", "SLOW", "GARBLED", "bad but unlucky", "FLAKY", "good two"]

    snap = b.stats.snapshot()
    q, r = snap["by_tag"]["quality/p1"], snap["by_tag"]["refine.rewrite/p1"]
    assert q["failures"] == {"server": 1, "timeout": 1, "malformed": 1}
    assert q["failed_rows"] == 3 and q["rows"] == 8
    # 8 first tries + FAIL, SLOW, GARBLED and FLAKY retried once each
    assert q["requests"] == 12 and q["retries"] == 4
    assert r["failures"] == {"server": 1} and r["kept_original"] == 1 and r["rewritten"] == 1
    assert r["rows"] == 2 and r["requests"] == 3
    assert snap["failures"] == {"server": 2, "timeout": 1, "malformed": 1}
    kinds = sorted(e["kind"] for e in snap["errors"])
    assert kinds == ["malformed", "server", "server", "timeout"]
    assert any("the judge crashed" in e["error"] for e in snap["errors"])

    # what went over the wire
    judge = [rq for rq in srv.chat_requests if rq.system == QUALITY_SYSTEM]
    first = judge[0]
    assert first.path == "/v1/chat/completions"
    assert first.headers.get("authorization") == "Bearer test-key"
    assert first.body["model"] == "fake-judge"
    assert first.body["temperature"] == 0.0 and first.body["max_tokens"] == 32 and first.body["seed"] == 0
    assert first.response_format == {"type": "json_schema", "json_schema": {"name": "quality", "schema": QUALITY_SCHEMA}}
    rewrites = [rq for rq in srv.chat_requests if rq.system == REWRITE_SYSTEM]
    assert sorted(rq.last_user.split("TO REWRITE:\n", 1)[1] for rq in rewrites) == ["bad but unlucky", "bad but unlucky", "bad one"]
    assert all("INSTRUCTION (context only, do not rewrite it):\nquestion " in rq.last_user for rq in rewrites)
    assert "response_format" not in rewrites[0].body


def test_rate_limit_with_retry_after_is_retried():
    seen = []

    def handler(req):
        seen.append(req.index)
        return Reply.error(429, "slow down", retry_after=0.05) if req.index == 0 else '{"score": 10}'

    with FakeOpenAIServer(handler) as srv:
        b = backend(srv, max_retries=2)
        out = lower_strategy(Strategy("t", (Assign("q", quality()),)), data().head(1), Context(registry(), services={"model_backend": b})).collect()
    assert out["q"].to_list() == [1.0]
    assert b.stats.get("retries") == 1 and b.stats.failures() == {}
    assert seen == [0, 1]


def test_bad_credentials_stop_the_run():
    with FakeOpenAIServer(lambda req: Reply.error(401, "invalid api key")) as srv:
        b = backend(srv)
        plan = lower_strategy(Strategy("t", (Assign("q", quality()),)), data(), Context(registry(), services={"model_backend": b}))
        with pytest.raises(ConfigError, match="refused the credentials"):
            plan.collect()


def test_generation_over_http_and_the_memo_across_runs(tmp_path):
    def handler(req: FakeRequest):
        if "pairs" in req.last_user:
            return json.dumps({"pairs": [{"instruction": "New Q?", "output": "New A."}]})
        return "A filled answer."

    lf = pl.LazyFrame({"instruction": ["q0", "q1", "q2"], "output": ["a0", "", "a2"]})
    steps = (
        OpStep("gen.fill", (Col("output"), Col("instruction"))),
        OpStep("gen.synthesize", (Col("instruction"), Col("output"))),
    )
    with FakeOpenAIServer(handler) as srv:
        b = backend(srv, memo=tmp_path / "memo")
        out = lower_strategy(Strategy("t", steps), lf, Context(registry(), services={"model_backend": b}), keep_internal=True).collect()
        assert out["output"].to_list() == ["a0", "A filled answer.", "a2", "New A.", "New A.", "New A."]
        assert out[ROW_ID].to_list() == [0, 1, 2, 2**62, 2**62 + 16, 2**62 + 32]
        assert out[ORIGIN].to_list() == [None, None, None, 0, 1, 2]
        synth = [rq for rq in srv.chat_requests if "pairs" in rq.last_user]
        assert synth[0].response_format["type"] == "json_schema"
        assert synth[0].response_format["json_schema"]["schema"]["properties"]["pairs"]["maxItems"] == 1
        n_requests = len(srv.chat_requests)
        assert n_requests == 4

        # the same rows under another strategy, a fresh backend (a new run): all memo hits
        b2 = backend(srv, memo=tmp_path / "memo")
        again = lower_strategy(Strategy("t2", steps), lf, Context(registry(), services={"model_backend": b2}), keep_internal=True).collect()
        assert again.equals(out)
        assert len(srv.chat_requests) == n_requests
        assert b2.stats.get("cache_hits") == 4 and b2.stats.get("requests") == 0


def test_spec_string_service_and_structured_modes():
    with FakeOpenAIServer(lambda req: '{"score": 5}') as srv:
        spec = f"openai:fake@{srv.base_url}?timeout=2&memo=false&structured=json_object"
        ctx = Context(registry(), services={"model_backend": spec})
        out = lower_strategy(Strategy("t", (Assign("q", quality()),)), data().head(2), ctx).collect()
        assert out["q"].to_list() == [4 / 9, 4 / 9]
        assert srv.chat_requests[0].response_format == {"type": "json_object"}
        b = from_config(f"openai:fake@{srv.base_url}?memo=false&structured=none")
        b.generate([__import__("stdlib_ops.backends", fromlist=["ChatPrompt"]).ChatPrompt.user("x")])
        assert "response_format" not in srv.chat_requests[-1].body


def test_fake_server_records_and_serves_models():
    import urllib.request

    with FakeOpenAIServer(model="m1") as srv:
        with urllib.request.urlopen(srv.base_url + "/models") as resp:
            assert json.load(resp)["data"][0]["id"] == "m1"
        b = backend(srv)
        from stdlib_ops.backends import ChatPrompt

        [r] = b.generate([ChatPrompt.user("echo me")])
        assert r.text == "echo me"
        assert [rq.index for rq in srv.requests] == [-1, 0]
