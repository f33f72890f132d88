"""Privacy: no row text reaches an agent's requests.

Canary strings are planted in every row; a fake OpenAI-compatible server on 127.0.0.1 records
every request the LLM agents send. No canary, and no substring of 20+ characters of any row,
may appear in any request (prompts, repair prompts, JSON schema, everything in the body).
"""

from __future__ import annotations

import json

import pytest

from autodp_backends.testing import FakeOpenAIServer, FakeRequest, Reply
from autodp_search import Budget, LLMConfig, ScriptedEvaluator, SearchConfig, run_search
from autodp_search.boundary import reason_code, standard_feedback
from autodp_search.evaluators import EvalOutcome

from .helpers import canary_rows, write_jsonl

W = 20


def windows(text: str, w: int = W) -> set[str]:
    return {text[i : i + w] for i in range(len(text) - w + 1)}


def assert_no_leak(bodies: list[str], rows: list[dict], canaries: list[str]) -> None:
    assert bodies, "the agent sent no request"
    sent = set()
    for b in bodies:
        sent |= windows(b)
    for c in canaries:
        assert not any(c in b for b in bodies), f"canary {c} leaked"
    for r in rows:
        for field in ("instruction", "output"):
            text = r[field]
            leaked = windows(text) & sent
            assert not leaked, f"a 20-character substring of a row leaked: {sorted(leaked)[:3]}"


def llm_handler(requests_seen: list, *, structured: bool = True, bad_first: bool = True):
    """Replies with strategies; the first reply has one invalid strategy so that a repair is asked."""
    state = {"n": 0}

    def handler(req: FakeRequest):
        requests_seen.append(json.dumps(req.body, ensure_ascii=False))
        if "Reply with the word OK" in json.dumps(req.body):  # the pre-flight check
            return "OK"
        if not structured and "response_format" in req.body:
            return Reply.error(400, "response_format is not supported")
        state["n"] += 1
        strategies = [
            {"rationale": "drop short answers", "strategy": {"dp": 1, "name": f"s{state['n']}",
                                                             "steps": ["clean.html(output)", {"filter": f"words(output) >= {14 + state['n']}"}]}},
            {"rationale": "dedup", "strategy": {"dp": 1, "name": f"d{state['n']}", "steps": ["dedup.exact(instruction, output)"]}},
        ]
        if bad_first and state["n"] == 1:
            strategies.append({"rationale": "typo", "strategy": {"dp": 1, "name": "bad", "steps": [{"filter": "words(output) >="}]}})
        text = json.dumps({"strategies": strategies})
        return text if structured else "Here are my ideas:\n```json\n" + text + "\n```"

    return handler


@pytest.fixture(scope="module")
def canary_data(tmp_path_factory):
    rows, canaries = canary_rows(200)
    path = write_jsonl(tmp_path_factory.mktemp("canary") / "canary.jsonl", rows)
    return path, rows, canaries


@pytest.mark.parametrize(("agent", "structured"), [("llm", True), ("llm", False), ("automl", True)])
def test_no_row_text_reaches_the_llm(canary_data, tmp_path, agent, structured):
    path, rows, canaries = canary_data
    seen: list[str] = []
    with FakeOpenAIServer(llm_handler(seen, structured=structured)) as server:
        cfg = SearchConfig(data=str(path), out_dir=str(tmp_path / "out"), agent=agent, quiet=True,
                           llm=LLMConfig(base_url=server.base_url, model="fake", max_retries=0),
                           budget=Budget(max_rounds=2), heldout_n=20, final_heldout_n=20, sample_fraction=0.5)
        res = run_search(cfg, evaluator=ScriptedEvaluator())
        bodies = [json.dumps(r.body, ensure_ascii=False) for r in server.chat_requests]
    assert len(bodies) >= 2
    if agent == "llm":
        assert any("repair attempt" in b for b in bodies), "the invalid strategy was not sent back for repair"
        assert any("score - r0" in b for b in bodies[1:]), "round 2 prompt lacks the group-relative history"
    assert_no_leak(bodies, rows, canaries)
    assert res.best is not None


def test_real_evaluator_rationales_are_not_forwarded(canary_data, tmp_path):
    """A judge whose rationales quote the reference answers (which carry canaries): the loop must
    forward counts only. Also the one end-to-end run with the real evaluator (smoke preset): its noise
    band, racing replicates and the placebo rule reach the round-2 prompt as numbers."""
    from autodp_eval import ScriptedJudge, Verdict
    from autodp_search import AutodpEvaluator

    path, rows, canaries = canary_data

    def rule(item):
        return Verdict(id=item.id, winner="a" if len(item.question) % 2 else "b",
                       rationale=f"the reference says: {item.reference}")

    ev = AutodpEvaluator("smoke", {"feedback_examples": 3}, cache_dir=tmp_path / "evalcache",
                         judge=ScriptedJudge(rule, key="quote-v1"))
    seen: list[str] = []
    with FakeOpenAIServer(llm_handler(seen, bad_first=False)) as server:
        cfg = SearchConfig(data=str(path), out_dir=str(tmp_path / "out"), agent="llm", quiet=True,
                           llm=LLMConfig(base_url=server.base_url, model="fake", max_retries=0),
                           budget=Budget(max_rounds=2), heldout_n=20, final_heldout_n=20, sample_fraction=0.5,
                           race_finetunes=2)
        res = run_search(cfg, evaluator=ev)
        bodies = [json.dumps(r.body, ensure_ascii=False) for r in server.chat_requests]
    assert any(r.status == "ok" for r in res.records)
    assert_no_leak(bodies, rows, canaries)
    band = res.report["noise_band"]
    assert [p["fraction"] for p in band["points"]] == [0.1, 0.3] and all(len(p["per_replicate"]) == 3 for p in band["points"])
    assert any("placebo (as many rows dropped at random)" in b for b in bodies[1:])
    assert res.final is not None and res.final["eval"]["win_rate"] is not None
    for name in ("best.dp", "processed.jsonl", "report.json", "report.html"):
        assert (tmp_path / "out" / name).exists()
    # the final verdict: 3 replicates on fresh seeds, each with a placebo arm, stated in the report
    fe = res.final["eval"]
    assert fe["replicates"] == 3 and fe["placebo"] is not None
    assert fe["placebo"]["beats_placebo"] in (True, False, None) and "placebo" in fe["placebo"]["statement"]
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Placebo control" in html
    if fe["placebo"]["beats_placebo"] is not True:
        assert "no strategy is shown to improve" in html


def test_the_placebo_feedback_carries_no_exact_row_count():
    """The placebo of a candidate's size, which the agent is told, comes from its coarsened drop count:
    candidates whose exact counts round alike get the same placebo numbers and verdict."""
    from autodp_search.boundary import Counts, coarse_drop_fraction
    from autodp_search.racing import NoiseBand, placebo_rule

    band = NoiseBand.from_points([{"fraction": 0.1, "dropped": 30, "per_replicate": [0.4, 0.45, 0.5], "estimate": 0.45,
                                   "low": 0.33, "high": 0.57},
                                  {"fraction": 0.3, "dropped": 90, "per_replicate": [0.3, 0.32, 0.34],
                                   "estimate": 0.32, "low": 0.27, "high": 0.37}])
    counts = Counts(20, 300)
    views = set()
    for kept in range(231, 250):  # 51 to 69 rows dropped: all shown as ~60
        if counts(300 - kept) != "~60":
            continue
        views.add(tuple(sorted(placebo_rule(0.5, 0.4, 0.6, band, coarse_drop_fraction(300, kept, 20)).items())))
    assert len(views) == 1
    assert coarse_drop_fraction(300, 285, 20) == 0.0  # under k rows dropped: none, like "<20"


def test_an_adversary_cannot_read_an_exact_count_out_of_the_placebo_figure():
    """A curious agent reads the placebo figure of its candidate (what as many rows dropped at random
    score, interpolated in the noise band) and solves it for the kept count or the sample's size. The
    figure, as the loop computes it (``Search.score_fields``), is the same for every pair of exact
    counts that round alike (input ~280, kept ~240): there is nothing to solve for. The control: fed
    the exact share dropped, the same band gives the counts away."""
    from collections import defaultdict
    from types import SimpleNamespace

    from autodp_search.loop import Search
    from autodp_search.racing import NoiseBand, placebo_rule

    band = NoiseBand.from_points([{"fraction": 0.1, "dropped": 28, "per_replicate": [0.4, 0.45, 0.5], "estimate": 0.45,
                                   "low": 0.33, "high": 0.57},
                                  {"fraction": 0.3, "dropped": 84, "per_replicate": [0.3, 0.32, 0.34],
                                   "estimate": 0.32, "low": 0.27, "high": 0.37}])
    search = SimpleNamespace(band=band, cfg=SimpleNamespace(profile_k=20))
    fields = ("placebo", "placebo_low", "placebo_high", "beats_placebo", "improvement")
    seen, exact = defaultdict(set), set()
    for rows_in in range(271, 290):  # the sample's size, shown as about 280
        for kept in range(231, 250):  # the candidate's kept count, shown as ~240
            f = Search.score_fields(search, EvalOutcome(0.5, 0.4, 0.6), rows_in, kept)
            seen[(round(rows_in / 20), round(kept / 20))].add(tuple(f[x] for x in fields))
            exact.add(placebo_rule(0.5, 0.4, 0.6, band, (rows_in - kept) / rows_in)["placebo"])
    assert len(seen) == 1 and all(len(v) == 1 for v in seen.values()), {k: len(v) for k, v in seen.items()}
    assert len(exact) > 100  # the control: an exact share would tell the worlds apart


def test_the_leak_check_catches_a_leak(canary_data):
    _, rows, canaries = canary_data
    with pytest.raises(AssertionError):
        assert_no_leak(["prompt " + rows[5]["output"][3:30]], rows, [])
    with pytest.raises(AssertionError):
        assert_no_leak(["prompt " + canaries[0]], rows, canaries)


def test_drop_reasons_are_reduced_to_codes():
    assert reason_code("dedup.exact", "dedup.exact(output)") == "dedup.exact"
    assert reason_code("too_short", "x") == "too_short"
    assert reason_code("dedup.exact(output)", "dedup.exact(output)") == "step"
    assert reason_code("duplicate of: The patient has a fever since", "x") == "other"
    assert reason_code("exact duplicate of row 1244", "dedup.exact(output)") == "exact-duplicate"
    assert reason_code("near-duplicate of row 7", "x") == "near-duplicate"
    assert reason_code("exact duplicate of row The patient has a fever", "x") == "other"
    inner = "filter: words(output) >= 3"
    assert reason_code(inner, "where: lowq > 0.5", frozenset({inner})) == inner
    assert reason_code("x" * 60, "y") == "other"


def test_feedback_is_numbers_only():
    o = EvalOutcome(0.6, 0.5, 0.7, n=10, wins=6, ties=0, losses=4, candidate_loss=1.0, baseline_loss=1.1, n_train=5)
    fb = standard_feedback(o)
    assert "6 wins" in fb and "1.000 vs 1.100" in fb
    assert not any(ch.isalpha() and ch.isupper() for ch in fb)


def test_the_placebo_figure_of_a_candidate_keeping_under_k_rows_tells_nothing_more_than_lt_k():
    """A candidate that keeps between min_rows (10) and k (20) rows is evaluated and shown as keeping
    "<20" rows; its placebo figure must not tell 10 kept rows from 11 (round(10/20) is 0 but
    round(11/20) is 1: an agent learned whether any row past a known ten matched). Every count the
    agent sees alike, from 0 kept to all of them, gives one figure."""
    from collections import defaultdict

    from autodp_search.boundary import Counts, coarse_drop_fraction

    for k, total in ((20, 300), (20, 1003), (5, 47), (20, 30)):
        counts, seen = Counts(k, total), defaultdict(set)
        for kept in range(total + 1):
            seen[counts(kept)].add(coarse_drop_fraction(total, kept, k))
        assert all(len(v) == 1 for v in seen.values()), {c: v for c, v in seen.items() if len(v) > 1}
