"""End to end on CPU: clean vs corrupted copies of one small data set, trained, answered, judged."""

from __future__ import annotations

import json
import time
import zlib

import pytest

from autodp_eval import EvalResult, PairwiseLLMJudge, evaluate, train_arm
from autodp_eval.testing import FakeOpenAIServer, Reply, judge_prompt_parts

from .conftest import overlap_rule_reply


@pytest.fixture(scope="session")
def likelihood_result(qa_split, e2e_config, eval_cache) -> EvalResult:
    clean, corrupted, held = qa_split
    return evaluate(clean, corrupted, held, e2e_config, cache_dir=eval_cache)


def test_clean_arm_wins_clearly_with_the_offline_judge(likelihood_result):
    res = likelihood_result
    assert res.n == 60 and res.failures == 0
    assert res.win_rate >= 0.8 and res.ci_low > 0.5, res.summary()
    assert res.candidate_heldout_loss < res.baseline_heldout_loss
    assert res.judge == "likelihood" and not res.from_cache
    assert set(res.slices) == {"information", "causes", "symptoms", "treatment", "organ"}
    assert sum(s.n for s in res.slices.values()) == 60
    for stage in (
        "train_baseline",
        "train_candidate",
        "generate_baseline",
        "generate_candidate",
        "judge",
        "total",
    ):
        assert stage in res.timings
    assert res.heldout.source == "given" and res.heldout.n == 60
    assert "win rate" in res.feedback and "held-out loss" in res.feedback
    assert EvalResult.model_validate_json(res.model_dump_json()) == res  # JSON-serialisable


def test_corrupted_candidate_loses(qa_split, e2e_config, eval_cache):
    clean, corrupted, held = qa_split
    res = evaluate(corrupted, clean, held, e2e_config, cache_dir=eval_cache)
    assert res.win_rate <= 0.2 and res.ci_high < 0.5, res.summary()


def test_an_evaluation_asked_twice_runs_once(qa_split, e2e_config, eval_cache, likelihood_result):
    clean, corrupted, held = qa_split
    t = time.perf_counter()
    again = evaluate(clean, corrupted, held, e2e_config, cache_dir=eval_cache)
    assert time.perf_counter() - t < 2.0
    assert (
        again.from_cache
        and again.win_rate == likelihood_result.win_rate
        and again.key == likelihood_result.key
    )


def test_baseline_arm_is_trained_once_for_many_candidates(
    qa_split, e2e_config, eval_cache, likelihood_result
):
    clean, corrupted, held = qa_split
    other = clean[:200]  # a new candidate (e.g. a filtering strategy) against the same baseline
    res = evaluate(other, corrupted, held, e2e_config, cache_dir=eval_cache)
    assert not res.from_cache
    assert res.baseline.arm_key == likelihood_result.baseline.arm_key and not res.baseline.trained_now
    assert res.candidate.trained_now and res.candidate.n_train == 200
    # the lower-level API finds the same arm
    arm = train_arm(corrupted, e2e_config, cache_dir=eval_cache, tokenizer_data=corrupted)
    assert arm.from_cache and arm.key == likelihood_result.baseline.arm_key


def test_heldout_split_off_the_baseline_is_reported_and_kept_out_of_training(qa_split, e2e_config, tmp_path):
    clean, corrupted, _ = qa_split
    cfg = e2e_config.with_overrides(train={"epochs": 1}, heldout_n=25, generate={"enabled": False})
    res = evaluate(clean, corrupted, None, cfg, cache_dir=tmp_path)
    assert res.heldout.source == "split" and res.heldout.n == 25 and res.heldout.seed == 0
    assert res.baseline.n_rows == len(corrupted) and res.baseline.n_train == len(corrupted) - 25
    # the candidate shares the questions: its copies of the held-out questions are dropped too
    assert res.candidate.removed_heldout_overlap == 25 and res.candidate.n_train == len(clean) - 25
    assert "generate_candidate" not in res.timings  # the likelihood judge needs no answers


def test_clean_arm_wins_with_the_pairwise_judge_on_a_fake_server(qa_split, e2e_config, eval_cache):
    clean, corrupted, held = qa_split
    with FakeOpenAIServer(overlap_rule_reply) as server:
        judge = PairwiseLLMJudge("fake-judge", server.base_url, api_key="x", backoff_s=0.001)
        res = evaluate(clean, corrupted, held, e2e_config, cache_dir=eval_cache, judge=judge)
    assert res.failures == 0 and res.n == 60
    assert res.win_rate >= 0.7 and res.ci_low > 0.5, res.summary()
    assert len(server.requests) == 120  # both orders for every question
    assert not res.candidate.trained_now and not res.baseline.trained_now  # arms reused from the cache
    pairs = {(judge_prompt_parts(r)["question"], judge_prompt_parts(r)["answer_1"]) for r in server.requests}
    assert len(pairs) == 120  # each question shown with each answer first
    assert res.rationales and "reference words covered" in res.rationales[0]


def test_pairwise_judge_with_a_failing_server(qa_split, e2e_config, eval_cache):
    clean, corrupted, held = qa_split
    bad_questions = {r["instruction"] for r in held[:5]}
    asked: set[tuple[str, str]] = set()
    transient: list[tuple[str, str]] = []

    def handler(req):
        parts = judge_prompt_parts(req)
        if parts["question"] in bad_questions:
            return Reply.error(500, "judge backend down")
        key = (parts["question"], parts["answer_1"])
        if key not in asked:
            asked.add(key)
            if zlib.crc32(repr(key).encode()) % 7 == 0:
                # transient, on the first attempt of some requests only (whatever the order the
                # concurrent requests arrive in): the retry succeeds
                transient.append(key)
                return Reply.error(503, "busy")
        return overlap_rule_reply(req)

    with FakeOpenAIServer(handler) as server:
        judge = PairwiseLLMJudge("fake-judge", server.base_url, api_key="x", backoff_s=0.001, max_retries=2)
        res = evaluate(clean, corrupted, held, e2e_config, cache_dir=eval_cache, judge=judge)
        assert transient  # some requests did fail once
        assert res.failures == 5 and res.failure_counts == {"http-500": 5}
        assert res.n - res.failures == 55 and res.win_rate is not None
        assert "judge failures: 5 of 60" in res.feedback
        failed = [v for v in res.verdicts if v.winner == "failed"]
        assert all("judge backend down" in v.error for v in failed)
        # a result with failures is not memoised: asking again asks the endpoint again
        before = len(server.requests)
        res2 = evaluate(clean, corrupted, held, e2e_config, cache_dir=eval_cache, judge=judge)
        assert not res2.from_cache and len(server.requests) > before


def test_result_json_is_plain(likelihood_result):
    data = json.loads(likelihood_result.model_dump_json())
    for key in (
        "win_rate",
        "ci_low",
        "ci_high",
        "wins",
        "ties",
        "losses",
        "failures",
        "slices",
        "feedback",
        "timings",
        "candidate_heldout_loss",
        "baseline_heldout_loss",
        "verdicts",
    ):
        assert key in data
