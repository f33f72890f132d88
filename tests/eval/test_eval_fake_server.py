"""The fake OpenAI-compatible server (autodp_backends.testing, also autodp_eval.testing's), with the
features the evaluator's tests use (API key, streaming, faults), through the real openai client."""

from __future__ import annotations

import openai
import pytest

from autodp_eval.testing import FakeOpenAIServer, Reply, user_text


def test_chat_completion_records_requests_and_auth():
    with FakeOpenAIServer(lambda req: "echo: " + user_text(req), model="fake-judge", api_key="sk-test") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
        resp = client.chat.completions.create(
            model="judge", messages=[{"role": "user", "content": "hello"}], response_format=schema
        )
        assert resp.choices[0].message.content == "echo: hello"
        assert [m.id for m in client.models.list()] == ["fake-judge"]
        bad = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="judge", messages=[{"role": "user", "content": "x"}])
    assert server.chat_requests[0].response_format == schema  # passed through unchanged
    assert server.chat_requests[0].model == "judge"
    assert server.chat_requests[0].headers["authorization"] == "Bearer sk-test"
    assert len(server.chat_requests) == 1  # the unauthorised request is rejected before the handler


def test_streaming():
    text = "a reply long enough to come in several chunks"
    with FakeOpenAIServer(lambda req: text) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        got = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert got == text


def test_failures_by_status_and_by_exception():
    def handler(req):
        msg = user_text(req)
        if msg == "limit":
            return Reply.error(429, "slow down")
        if msg == "crash":
            raise ValueError("handler bug")
        return "ok"

    with FakeOpenAIServer(handler) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.RateLimitError, match="slow down"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "limit"}])
        with pytest.raises(openai.InternalServerError, match="handler bug"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "crash"}])
        ok = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "fine"}])
        assert ok.choices[0].message.content == "ok"


def test_base_url_needs_a_running_server():
    with pytest.raises(RuntimeError, match="not running"):
        _ = FakeOpenAIServer().base_url
