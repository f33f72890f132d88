"""The LLM agent's fault matrix, against a fake OpenAI-compatible server on 127.0.0.1.

Each fault ends in a clean stop or a bounded retry: one ``error:`` line, the exit code of the table
in docs/cli.md (4: the agent's back-end failed, 3: no valid strategy), a report with the reason,
the journal keeping what was done, and ``--resume`` continuing.
"""

from __future__ import annotations

import json
import socket

import pytest

from autodp_backends import exitcodes
from autodp_dsl.cli import main
from autodp_search import ScriptedEvaluator
from stdlib_ops.backends.testing import FakeOpenAIServer, Reply

from .helpers import qa_rows, write_jsonl

FAST = ["--heldout", "20", "--final-heldout", "20", "--sample-fraction", "0.5", "--no-target-selection", "--quiet",
        "--no-final", "--agent", "llm", "--llm-model", "fake-model", "--llm-retries", "1"]


def strategies(*filters: str) -> str:
    return json.dumps({"strategies": [
        {"rationale": "r", "strategy": {"dp": 1, "name": f"s{i}", "steps": [{"filter": f}]}}
        for i, f in enumerate(filters)]})


GOOD = strategies("words(output) >= 8")
INVALID = strategies("nosuchsignal(output) >= 8")


def is_preflight(req) -> bool:
    return "Reply with the word OK" in req.last_user


def scripted_server(*replies):
    """A server that answers the pre-flight, then ``replies`` in order (the last one repeats)."""
    state = {"n": 0}

    def handler(req):
        if is_preflight(req):
            return "OK"
        i = min(state["n"], len(replies) - 1)
        state["n"] += 1
        r = replies[i]
        return r(req) if callable(r) else r

    return FakeOpenAIServer(handler, model="fake-model")


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("d") / "qa.jsonl", qa_rows(300))


@pytest.fixture
def evaluator(monkeypatch):
    """The real loop and the real LLM agent, with a scripted evaluator."""
    import autodp_search.loop as loop

    real = loop.run_search
    ev = ScriptedEvaluator(memo=False)
    monkeypatch.setattr(loop, "run_search", lambda cfg: real(cfg, evaluator=ev))
    return ev


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ")
    return lines[0]


def search(qa, out, srv_url, *extra):
    return main(["search", str(qa), "--out", str(out), "--llm-base-url", srv_url, *FAST, *extra])


def report(out) -> dict:
    return json.loads((out / "report.json").read_text())


def chats(srv) -> list:
    return [r for r in srv.chat_requests if not is_preflight(r)]


def test_refused_connection_is_found_before_the_baseline_and_names_the_url(qa, tmp_path, evaluator, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    rc = search(qa, tmp_path / "o", url)
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.BACKEND
    assert "the agent's model is not usable" in err and url in err and "connection" in err
    assert evaluator.calls == 0  # nothing was spent: the baseline was not trained


def test_persistent_500_retries_boundedly_then_stops_with_a_report(qa, tmp_path, evaluator, capsys):
    out = tmp_path / "o"
    with scripted_server(Reply.error(500, "boom")) as srv:
        url = srv.base_url
        rc = search(qa, out, url)
        n = len(chats(srv))
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.BACKEND
    assert "HTTP 500" in err and "2 attempt(s)" in err and url in err and "--resume continues" in err
    assert n == 2  # one request and --llm-retries 1
    rep = report(out)
    assert "HTTP 500" in rep["stop_reason"]
    assert rep["agent"]["backend"]["failures"] == {"server": 1} and rep["agent"]["backend"]["retries"] == 1
    assert (out / "journal" / "setup.json").exists()  # the baseline is kept


def test_a_failure_in_round_2_keeps_round_1_and_resume_continues(qa, tmp_path, evaluator, capsys):
    out = tmp_path / "o"
    with scripted_server(GOOD, Reply.error(503, "overloaded")) as srv:
        assert search(qa, out, srv.base_url, "--rounds", "2", "--refills", "0") == exitcodes.BACKEND
    one_line(capsys.readouterr().err)
    assert (out / "journal" / "round-0001.json").exists() and not (out / "journal" / "round-0002.json").exists()
    assert [c["cid"] for c in report(out)["candidates"]] == ["r1c1"]
    trained = evaluator.calls
    with scripted_server(strategies("words(output) >= 25")) as srv:
        assert search(qa, out, srv.base_url, "--rounds", "2", "--refills", "0", "--resume") == exitcodes.OK
        assert len(chats(srv)) == 1  # round 2 only: round 1 is not asked again
    assert evaluator.calls <= trained + 1  # round 2's candidate at most; the baseline comes from the journal
    assert [c["cid"] for c in report(out)["candidates"]] == ["r1c1", "r2c1"]


def test_a_slow_server_times_out_per_request(qa, tmp_path, evaluator, capsys):
    out = tmp_path / "o"
    with scripted_server(Reply.hang(30, GOOD)) as srv:
        rc = search(qa, out, srv.base_url, "--llm-timeout", "0.3", "--llm-retries", "0")
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.BACKEND and "no answer within 0.3 s" in err and "--llm-timeout" in err


def test_max_time_holds_while_a_call_hangs(qa, tmp_path, evaluator, capsys):
    """A request that hangs longer than the search may run is cut at the time left: a budget stop
    (no strategy was scored: exit 3), not a six-minute wait."""
    out = tmp_path / "o"
    with scripted_server(Reply.hang(60, GOOD)) as srv:
        rc = search(qa, out, srv.base_url, "--max-time", "2", "--llm-timeout", "120")
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.NO_STRATEGY and "time budget spent" in err
    assert "time budget spent" in report(out)["stop_reason"]


def test_context_length_400_is_named(qa, tmp_path, evaluator, capsys):
    msg = "This model's maximum context length is 2048 tokens. However, you requested 9000 tokens."
    with scripted_server(Reply.error(400, msg)) as srv:
        rc = search(qa, tmp_path / "o", srv.base_url)
        n = len(chats(srv))
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.BACKEND and "too long for the model's context" in err and "--llm-max-prompt-chars" in err
    assert n == 1  # not mistaken for a server without structured output, not retried


@pytest.mark.parametrize(("reply", "why"), [("", "an empty reply"),
                                            ("I would clean the data carefully.", "no strategy in the proposal reply"),
                                            ("{" + "x" * 3_000_000, "over the limit of 100000")])
def test_empty_prose_and_huge_replies_end_cleanly(reply, why, qa, tmp_path, evaluator, capsys):
    out = tmp_path / "o"
    with scripted_server(reply) as srv:
        rc = search(qa, out, srv.base_url)
        bodies = [json.dumps(r.body) for r in srv.chat_requests]
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.BACKEND and why in err and len(err) < 1500
    assert len(bodies) == 1 + 2  # the pre-flight, a request and one retry of a malformed reply
    assert all(len(b) < 200_000 for b in bodies)  # a huge reply is never sent back
    assert why in report(out)["stop_reason"]


def test_a_crash_during_a_repair_keeps_the_rounds_valid_proposals(qa, tmp_path, evaluator, capsys):
    out = tmp_path / "o"
    both = strategies("words(output) >= 8", "nosuchsignal(output) >= 3")
    with scripted_server(both, Reply.error(500, "crashed")) as srv:
        rc = search(qa, out, srv.base_url, "--rounds", "3")
        assert any("repair attempt 1" in r.last_user for r in chats(srv))
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.BACKEND and "the agent failed to repair r1c2" in err
    plan = json.loads((out / "journal" / "round-0001.plan.json").read_text())
    assert plan["agent_failure"] and [c["status"] for c in plan["candidates"]] == ["pending", "invalid"]
    assert plan["candidates"][1]["attempts"][0]["diagnostics"]  # the original proposal, with its diagnostics
    st = {c["cid"]: c["status"] for c in report(out)["candidates"]}
    assert st == {"r1c1": "ok", "r1c2": "invalid"}  # the valid proposal was evaluated, not lost
    assert (out / "journal" / "round-0001.json").exists()


def test_always_invalid_strategies_are_a_loud_no_strategy(qa, tmp_path, evaluator, capsys):
    out = tmp_path / "o"
    with scripted_server(INVALID) as srv:
        rc = search(qa, out, srv.base_url, "--rounds", "2", "--max-repairs", "1")
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.NO_STRATEGY and "no valid strategy" in err and "invalid" in err
    assert not (out / "best.dp").exists()  # never "best = unprocessed"
    assert evaluator.calls == 1  # the baseline only: nothing compared the raw data with itself


def test_force_after_a_crash_leaves_no_stale_report(qa, tmp_path, evaluator, capsys):
    out = tmp_path / "o"
    with scripted_server(Reply.error(500, "boom")) as srv:
        search(qa, out, srv.base_url)
    assert (out / "report.json").exists()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    assert search(qa, out, dead, "--force") == exitcodes.BACKEND
    assert not (out / "report.json").exists() and not (out / "report.html").exists()
    capsys.readouterr()


def test_a_model_the_server_does_not_serve_is_found_by_the_preflight(qa, tmp_path, evaluator, capsys):
    def handler(req):
        if req.model != "fake-model":
            return Reply.error(404, f"The model `{req.model}` does not exist.")
        return GOOD

    with FakeOpenAIServer(handler, model="fake-model") as srv:
        url = srv.base_url
        rc = main(["search", str(qa), "--out", str(tmp_path / "o"), "--llm-base-url", url, *FAST,
                   "--llm-model", "no-such-model"])
    err = one_line(capsys.readouterr().err)
    assert rc == exitcodes.BACKEND and "no-such-model" in err and url in err and "404" in err
    assert evaluator.calls == 0


def test_the_stop_file_bounds_calls_in_flight(qa, tmp_path, evaluator, capsys):
    """A STOP file that appears while the agent answers: no repair is asked after it."""
    out = tmp_path / "o"

    def stop_then_invalid(req):
        (out / "STOP").write_text("")
        return INVALID

    with scripted_server(stop_then_invalid) as srv:
        rc = search(qa, out, srv.base_url, "--max-repairs", "3")
        n = len(chats(srv))
    assert n == 1 and rc == exitcodes.NO_STRATEGY
    assert "stop file" in report(out)["stop_reason"]
    capsys.readouterr()
