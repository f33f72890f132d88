"""The backend machinery: retries, backoff bounds, malformed output, memo, concurrency, configuration."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from stdlib_ops._llm import clean_reply, parse_json, parse_score
from stdlib_ops.backends import (
    ChatPrompt,
    ConfigError,
    MalformedOutput,
    Memo,
    ModelBackend,
    OpenAIBackend,
    PermanentError,
    Sampling,
    ScriptedBackend,
    TransformersBackend,
    TransientError,
    UnsupportedError,
    VLLMBackend,
    default_backend,
    default_score_backend,
    from_config,
    parse_spec,
    resolve_backend,
)
from stdlib_ops.backends.config import _defaults

P = ChatPrompt.user


def test_retries_transient_errors_then_succeeds():
    seen = []

    def fn(p):
        seen.append(p.last_user)
        if seen.count(p.last_user) <= 2:
            raise TransientError("rate_limit", "HTTP 429")
        return "ok"

    b = ScriptedBackend(fn, max_retries=3)
    [r] = b.generate([P("x")], tag="t")
    assert (r.ok, r.text, r.attempts) == (True, "ok", 3)
    assert b.stats.get("retries") == 2 and b.stats.get("requests") == 3 and b.stats.failures() == {}


def test_retries_are_bounded_and_failures_counted():
    def fn(p):
        raise TransientError("timeout", "no answer within 1 s")

    b = ScriptedBackend(fn, max_retries=2)
    rs = b.generate([P("a"), P("b")], tag="t")
    assert [(r.ok, r.kind, r.attempts) for r in rs] == [(False, "timeout", 3)] * 2
    assert b.stats.get("requests") == 6 and b.stats.get("retries") == 4
    assert b.stats.failures("t") == {"timeout": 2}
    assert b.stats.snapshot()["failed_rows"] == 2


def test_backoff_grows_exponentially_and_honours_retry_after():
    b = ScriptedBackend(backoff_base=0.5, backoff_max=4.0)
    delays = [b._backoff(k, None) for k in (1, 2, 3, 4, 5)]
    for d, nominal in zip(delays, (0.5, 1.0, 2.0, 4.0, 4.0), strict=True):
        assert 0.75 * nominal <= d <= nominal
    assert b._backoff(1, 3.0) == 3.0
    assert b._backoff(1, 100.0) == 4.0  # capped


def test_permanent_errors_are_not_retried():
    calls = []

    def fn(p):
        calls.append(1)
        raise PermanentError("client", "HTTP 400: context too long")

    b = ScriptedBackend(fn, max_retries=5)
    [r] = b.generate([P("x")])
    assert (r.kind, r.error, r.attempts, len(calls)) == ("client", "HTTP 400: context too long", 1, 1)


def test_config_errors_stop_the_call():
    def fn(p):
        raise ConfigError("bad key")

    with pytest.raises(ConfigError, match="bad key"):
        ScriptedBackend(fn).generate([P("x")])


def test_script_bugs_become_internal_failures():
    [r] = ScriptedBackend(lambda p: 1 / 0).generate([P("x")])
    assert r.kind == "internal" and "ZeroDivisionError" in r.error


def test_malformed_output_is_retried_within_bounds():
    replies = iter(["no score", "still none", '{"score": 4}'])
    b = ScriptedBackend(lambda p: next(replies), malformed_retries=2)
    [r] = b.generate([P("x")], validate=parse_score)
    assert r.ok and r.value == pytest.approx(3 / 9) and r.attempts == 3
    b = ScriptedBackend(lambda p: "never a number", malformed_retries=1)
    [r] = b.generate([P("x")], validate=parse_score, tag="q")
    assert r.kind == "malformed" and r.attempts == 2 and "no score in the reply" in r.error
    assert b.stats.failures("q") == {"malformed": 1}


def test_results_keep_order_and_duplicates_are_asked_once():
    b = ScriptedBackend(lambda p: p.last_user * 2, concurrency=3)
    rs = b.generate([P(c) for c in "abcab"])
    assert [r.text for r in rs] == ["aa", "bb", "cc", "aa", "bb"]
    assert len(b.calls) == 3 and b.stats.get("deduplicated") == 2


def test_concurrency_is_bounded():
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def fn(p):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return "ok"

    b = ScriptedBackend(fn, concurrency=3)
    assert all(r.ok for r in b.generate([P(str(i)) for i in range(12)]))
    assert state["max"] == 3


def test_memo_persists_successes_only(tmp_path):
    fail = {"b"}

    def fn(p):
        if p.last_user in fail:
            raise PermanentError("client", "nope")
        return p.last_user.upper()

    b1 = ScriptedBackend(fn, memo=tmp_path)
    b1.generate([P("a"), P("b")], Sampling(max_tokens=5), tag="t")
    fail.clear()
    b2 = ScriptedBackend(fn, memo=tmp_path)
    rs = b2.generate([P("a"), P("b")], Sampling(max_tokens=5), tag="t")
    assert [(r.text, r.cached) for r in rs] == [("A", True), ("B", False)]
    assert [p.last_user for p in b2.calls] == ["b"]
    # the key covers sampling, tag and model: any change misses
    b3 = ScriptedBackend(fn, memo=tmp_path)
    b3.generate([P("a")], Sampling(max_tokens=6), tag="t")
    b3.generate([P("a")], Sampling(max_tokens=5), tag="t2")
    ScriptedBackend(fn, memo=tmp_path, name="other").generate([P("a")], Sampling(max_tokens=5), tag="t")
    assert b3.stats.get("cache_hits") == 0
    assert len(Memo(tmp_path)) == 5


def test_memo_entries_rejected_by_the_validator_are_asked_again(tmp_path):
    ScriptedBackend(lambda p: "seven", memo=tmp_path).generate([P("x")], tag="q")
    b = ScriptedBackend(lambda p: "7", memo=tmp_path)
    [r] = b.generate([P("x")], validate=parse_score, tag="q")
    assert r.value == pytest.approx(6 / 9) and not r.cached


def test_memo_default_location_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODP_CACHE_DIR", str(tmp_path / "cache"))
    assert Memo().path == tmp_path / "cache" / "model-memo" / "memo.sqlite3"


def test_score_memo_and_unsupported(tmp_path):
    from stdlib_ops.backends import ScoreItem

    b = ScriptedBackend(scorer=lambda it: (-1.5, 3), memo=tmp_path)
    items = [ScoreItem(P("q"), "a b c"), ScoreItem(None, "a b c")]
    assert [r.mean_nll for r in b.score(items)] == [0.5, 0.5]
    b2 = ScriptedBackend(scorer=lambda it: (0.0, 1), memo=tmp_path)
    assert [(r.logprob, r.cached) for r in b2.score(items)] == [(-1.5, True), (-1.5, True)]
    with pytest.raises(UnsupportedError, match="cannot score log-likelihoods"):
        OpenAIBackend("m", "http://127.0.0.1:9/v1", memo=False).score(items)


def test_parse_score_is_lenient_but_strict_about_range():
    cases = {
        '{"score": 7}': 6 / 9,
        '{"Rating": "10"}': 1.0,
        "Score: 1": 0.0,
        "The score is 4.5 because ...": 3.5 / 9,
        "I'd give it 8 out of 10.": 7 / 9,
        "8/10": 7 / 9,
        "9.": 8 / 9,
        '```json\n{"score": 3}\n```': 2 / 9,
        "Looking at [1], score = 6": 5 / 9,
        '{"score": 10, "reason": "cut off by the token lim': 1.0,
    }
    for text, value in cases.items():
        assert parse_score(text) == pytest.approx(value), text
    for bad in ["", "great answer", '{"score": 11}', "score: 0", '{"score": "high"}', '{"score": true}']:
        with pytest.raises(MalformedOutput):
            parse_score(bad)


def test_clean_reply_and_parse_json():
    assert clean_reply("Rewritten answer: Water boils at 100 °C.") == "Water boils at 100 °C."
    assert clean_reply("```\nline one\nline two\n```") == "line one\nline two"
    assert clean_reply('"Quoted."') == "Quoted."
    assert clean_reply("Answer: yes\nwith detail") == "yes\nwith detail"
    assert clean_reply("Note: keep this") == "Note: keep this"
    with pytest.raises(MalformedOutput):
        clean_reply("  \n ")
    assert parse_json('Sure! {"a": [1, 2]} done') == {"a": [1, 2]}
    with pytest.raises(MalformedOutput):
        parse_json("nothing")


def test_parse_spec_forms():
    assert parse_spec("openai:gpt-4o-mini") == {"kind": "openai", "model": "gpt-4o-mini"}
    assert parse_spec("openai:qwen2.5:7b@http://localhost:11434/v1?timeout=30&concurrency=4&structured=none") == {
        "kind": "openai",
        "model": "qwen2.5:7b",
        "base_url": "http://localhost:11434/v1",
        "timeout": 30,
        "concurrency": 4,
        "structured": "none",
    }
    assert parse_spec("openai:Qwen/Qwen2.5-7B-Instruct@https://gpu.example:8000/v1") == {
        "kind": "openai", "model": "Qwen/Qwen2.5-7B-Instruct", "base_url": "https://gpu.example:8000/v1"}
    assert parse_spec("local:smollm2?batch_size=4&memo=false") == {"kind": "local", "model": "smollm2", "batch_size": 4, "memo": False}
    assert parse_spec("local") == {"kind": "local", "model": "smollm2"}
    assert parse_spec("vllm:meta-llama/Llama-3.1-8B-Instruct") == {"kind": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct"}
    assert parse_spec("scripted") == {"kind": "scripted"}
    for bad, msg in [("", "empty backend spec"), ("gemini:x", "unknown backend kind 'gemini'"), ("openai:", "names no model"),
                     ("vllm", "names no model"), ("scripted:judge", "unknown script"), ("openai:m?timeout", "bad option")]:
        with pytest.raises(ConfigError, match=msg):
            parse_spec(bad)


def test_from_config_builds_each_kind_without_loading_anything(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AUTODP_LLM_API_KEY", raising=False)
    b = from_config("openai:m@http://127.0.0.1:9/v1?timeout=5&memo=false")
    assert isinstance(b, OpenAIBackend) and b.timeout == 5 and b.memo is None and b._api_key == "EMPTY"
    assert b.describe() == "openai:m@http://127.0.0.1:9/v1"
    assert b.cache_key() == {"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(ConfigError, match="no API key for OpenAI"):
        from_config("openai:gpt-4o-mini")
    monkeypatch.setenv("AUTODP_LLM_API_KEY", "sk-test")
    real = from_config("openai:gpt-4o-mini")
    assert real._api_key == "sk-test" and real.token_param == "max_completion_tokens" and b.token_param == "max_tokens"
    assert "max_completion_tokens" in real._request_kwargs(P("x"), Sampling(max_tokens=9))
    local = from_config({"kind": "local", "model": "smollm2", "memo": False})
    assert isinstance(local, TransformersBackend) and local._lm is None and local.supports_score
    assert isinstance(from_config("vllm:some/model?memo=false"), VLLMBackend)
    s = from_config({"kind": "scripted", "fn": lambda p: "hi"})
    assert isinstance(s, ScriptedBackend) and isinstance(s, ModelBackend)
    assert from_config(s) is s
    with pytest.raises(ConfigError, match="neither 'smollm2' nor a directory"):
        from_config(f"local:{tmp_path}/missing")
    with pytest.raises(ConfigError, match="bad options for the openai backend"):
        from_config("openai:m@http://127.0.0.1:9/v1?temprature=1")


def test_environment_configuration(monkeypatch):
    for var in ("AUTODP_LLM", "AUTODP_LLM_BASE_URL", "AUTODP_LLM_MODEL", "AUTODP_SCORE_MODEL", "AUTODP_LLM_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("stdlib_ops.backends.config._defaults", {})
    b = default_backend()
    assert isinstance(b, TransformersBackend) and b._lm is None  # not loaded until used
    assert default_score_backend() is b
    monkeypatch.setenv("AUTODP_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="AUTODP_LLM_MODEL is not"):
        default_backend()
    monkeypatch.setenv("AUTODP_LLM_MODEL", "served")
    monkeypatch.setenv("AUTODP_LLM_TIMEOUT", "7.5")
    b = default_backend()
    assert isinstance(b, OpenAIBackend) and b.base_url == "http://127.0.0.1:9/v1" and b.timeout == 7.5
    assert default_backend() is b  # one per configuration
    assert isinstance(default_score_backend(), TransformersBackend)
    monkeypatch.setenv("AUTODP_LLM", "scripted")
    assert isinstance(default_backend(), ScriptedBackend)
    monkeypatch.setenv("AUTODP_SCORE_MODEL", "local:smollm2?batch_size=2")
    assert default_score_backend().batch_size == 2


def test_resolve_backend_prefers_services():
    class Ctx:
        def __init__(self, services):
            self.services = services

        def service(self, name):
            return self.services.get(name)

    scorer = ScriptedBackend(scorer=lambda it: (0.0, 1))
    gen = ScriptedBackend()
    assert resolve_backend(Ctx({"model_backend": gen}), "model_backend") is gen
    assert resolve_backend(Ctx({"model_backend": scorer}), "score_backend") is scorer
    assert resolve_backend(Ctx({"model_backend": gen, "score_backend": scorer}), "score_backend") is scorer
    a = resolve_backend(Ctx({"model_backend": "scripted?name=x"}), "model_backend")
    assert a is resolve_backend(Ctx({"model_backend": "scripted?name=x"}), "model_backend")  # built once
    _defaults.clear()


def test_importing_the_catalog_loads_no_heavy_dependency():
    code = (
        "import sys, stdlib_ops, stdlib_ops.backends, stdlib_ops.scoring, stdlib_ops.generation, stdlib_ops.optimization\n"
        "from autodp_dsl.ops import registry; registry()\n"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'vllm', 'httpx2', 'httpx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(__import__("importlib").util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_without_the_package_is_a_config_error():
    b = VLLMBackend("some/model", memo=False)
    [r] = [None]
    with pytest.raises(ConfigError, match="needs the 'vllm' package"):
        r = b.generate([P("x")])
    assert r is None


def test_services_stats_reports_each_used_backend_once():
    from stdlib_ops.backends import services_stats

    b = ScriptedBackend(name="judge")
    b.generate([P("x")], tag="t")
    idle = ScriptedBackend(name="idle")
    report = services_stats({"model_backend": b, "score_backend": b, "other": idle})
    assert list(report) == ["scripted:judge"]
    assert report["scripted:judge"]["by_tag"]["t"]["rows"] == 1


def test_memo_is_written_chunk_by_chunk(tmp_path):
    def fn(p):
        if p.last_user == "boom":
            raise ConfigError("the run dies here")
        return p.last_user

    b = ScriptedBackend(fn, memo=tmp_path, chunk_size=2, concurrency=1)
    with pytest.raises(ConfigError):
        b.generate([P("a"), P("b"), P("boom"), P("c")])
    assert len(Memo(tmp_path)) == 2  # the first chunk survived
