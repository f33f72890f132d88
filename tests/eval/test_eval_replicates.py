"""Replicates, the incremental API, placebo arms, calibration and the LLM judge through them (smoke size)."""

from __future__ import annotations

import pytest

from autodp_eval import (
    SEED_BLOCK,
    EvalConfig,
    Evaluation,
    PairwiseLLMJudge,
    ReplicateResult,
    ScriptedJudge,
    calibrate,
    evaluate,
    random_drop,
)
from autodp_eval.testing import FakeOpenAIServer

from .conftest import overlap_rule_reply


@pytest.fixture(scope="module")
def cfg() -> EvalConfig:
    """Seconds per arm: the smoke recipe, no generation (the likelihood judge needs none)."""
    return EvalConfig.preset("smoke", generate={"enabled": False})


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("replicates-cache")


def test_aa_with_different_seeds_per_arm_contains_one_half(qa_split, cfg, cache):
    clean, _, held = qa_split
    res = evaluate(clean, clean, held, cfg, cache, replicates=5, paired=False)
    assert res.replicates == 5 and res.training_variance and res.between_replicate_sd > 0
    assert res.ci_low <= 0.5 <= res.ci_high, res.summary()
    assert res.nll_ci_low <= 0.0 <= res.nll_ci_high, res.summary()
    assert res.ci_high - res.ci_low < 0.9  # an informative interval, not [0, 1]
    seeds = [(x.arms["candidate"].seed, x.arms["baseline"].seed) for x in res.replicate_results]
    assert seeds == [(SEED_BLOCK + r, r) for r in range(5)]  # unpaired: other seeds, per replicate
    assert len({x.arms["candidate"].arm_key for x in res.replicate_results}) == 5
    assert all("per token" in v.rationale for v in res.verdicts)  # one tokenizer, whatever the seeds
    assert "5 unpaired replicates" in res.summary() and "includes training variance" in res.summary()
    # one pair of the same A/A: an interval over questions only, narrower than the training noise
    one = evaluate(clean, clean, held, cfg, cache, paired=False)
    assert one.ci_high - one.ci_low < res.ci_high - res.ci_low


def test_one_replicate_says_plainly_that_training_variance_is_excluded(qa_split, cfg, cache):
    clean, corrupted, held = qa_split
    res = evaluate(clean, corrupted, held, cfg, cache)
    assert res.replicates == 1 and not res.training_variance and res.between_replicate_sd is None
    assert "NOT training variance" in res.summary()
    assert res.replicate_results[0].arms["candidate"].seed == cfg.train.seed  # the search's arms, unchanged


def test_replicates_are_paired_units_merged_incrementally(qa_split, cfg, cache):
    clean, corrupted, held = qa_split
    ev = Evaluation(clean, corrupted, held, cfg, cache)
    r0 = ev.replicate(0)
    assert r0.arms["candidate"].seed == r0.arms["baseline"].seed == cfg.train.seed  # paired
    first = ev.combine([r0])
    # a replicate computed elsewhere travels as JSON and merges into the existing result
    r1 = ReplicateResult.model_validate_json(
        Evaluation(clean, corrupted, held, cfg, cache).replicate(1).model_dump_json()
    )
    two = ev.combine([first.replicate_results[0], r1])
    added = ev.add(first, 1)  # replicate 1 again: now from the memo
    volatile = {"timings", "replicate_results", "from_cache", "candidate", "baseline"}
    assert added.model_dump(exclude=volatile) == two.model_dump(exclude=volatile)
    assert (
        added.candidate.arm_key == two.candidate.arm_key
        and not added.replicate_results[1].arms["candidate"].trained_now
    )
    assert two.replicates == 2 and two.n == 2 * len(held)
    assert two.contrast.win.per_replicate == [first.win_rate, ev.combine([r1]).win_rate]
    again = evaluate(clean, corrupted, held, cfg, cache, replicates=2)  # every unit memoised
    assert again.from_cache and again.win_rate == two.win_rate and again.key == two.key
    with pytest.raises(ValueError, match="repeat"):
        ev.combine([r0, r0])
    with pytest.raises(ValueError, match="already in the result"):
        ev.add(two, 1)
    other = Evaluation(corrupted, clean, held, cfg, cache)
    with pytest.raises(ValueError, match="another evaluation"):
        other.combine([r0])
    assert [name for name, _ in ev.pending(3)] == ["baseline", "candidate"]  # replicate 2 not trained yet


def test_placebo_drops_exactly_the_candidates_row_count_reproducibly(qa_split, cfg, cache):
    clean, _, held = qa_split
    cand = clean[:150]
    ev = Evaluation(cand, clean, held, cfg, cache, placebo=True)
    assert ev.dropped == len(clean) - len(cand) == 90
    for r in range(3):
        p = ev.placebo_rows(r)
        assert len(p) == len(cand)
        assert p == Evaluation(cand, clean, held, cfg, cache, placebo=True).placebo_rows(
            r
        )  # same seed, same rows
        it = iter(ev.base_train)
        assert all(any(x == y for y in it) for x in p)  # a subset of the baseline's rows, order kept
    assert ev.placebo_rows(0) != ev.placebo_rows(1)
    other_seed = Evaluation(cand, clean, held, cfg.with_overrides(placebo_seed=5), cache, placebo=True)
    assert other_seed.placebo_rows(0) != ev.placebo_rows(0)
    assert random_drop(clean, 0, 1) == clean and len(random_drop(clean, 7, "x")) == len(clean) - 7


def test_placebo_evaluation_reports_the_band_and_a_plain_verdict(qa_split, cfg, cache):
    clean, corrupted, held = qa_split
    res = evaluate(clean[:150], clean, held, cfg, cache, replicates=2, placebo=True)
    p = res.placebo
    assert p is not None and p.kind == "random-drop" and p.dropped == 90
    for x in res.replicate_results:
        assert x.arms["placebo"].n_train == x.arms["candidate"].n_train == 150
        assert x.arms["placebo"].seed == x.arms["baseline"].seed  # paired with the baseline
        assert set(x.comparisons) == {"candidate-baseline", "placebo-baseline", "candidate-placebo"}
    assert p.band.win.replicates == 2 and p.candidate_vs_placebo.nll is not None
    assert "placebo: the candidate" in p.statement and "dropping the same number of rows (90)" in p.statement
    assert p.statement in res.summary() and p.statement in res.feedback
    # a strategy that drops nothing (rewrites): the band is A/A with unpaired seeds
    aa = evaluate(corrupted, clean, held, cfg, cache, placebo=True)
    assert aa.placebo.kind == "a/a" and aa.placebo.dropped == 0
    arms = aa.replicate_results[0].arms
    assert arms["placebo"].data_fingerprint == arms["baseline"].data_fingerprint
    assert arms["placebo"].seed == 2 * SEED_BLOCK + cfg.train.seed != arms["baseline"].seed
    assert "A/A" in aa.placebo.statement and "do not trust the verdict" in aa.placebo.statement


def test_the_llm_judge_runs_per_replicate_pair_with_placebo(qa_split, cfg, cache):
    clean, corrupted, held = qa_split
    held = held[:12]
    gen = cfg.with_overrides(generate={"enabled": True, "max_new_tokens": 8})
    with FakeOpenAIServer(overlap_rule_reply) as server:
        judge = PairwiseLLMJudge("fake-judge", server.base_url, api_key="x", backoff_s=0.001)
        res = evaluate(clean[:200], clean, held, gen, cache, judge=judge, replicates=2, placebo=True)
        assert len(server.requests) == 2 * 3 * 12 * 2  # replicates x pairs x questions x both orders
        assert res.failures == 0 and res.judge == "pairwise:fake-judge" and res.replicates == 2
        assert res.placebo.kind == "random-drop" and res.placebo.dropped == len(clean) - 200
        assert (
            res.placebo.candidate_vs_placebo.wins
            + res.placebo.candidate_vs_placebo.ties
            + (res.placebo.candidate_vs_placebo.losses)
            == 24
        )
        before = len(server.requests)
        again = evaluate(clean[:200], clean, held, gen, cache, judge=judge, replicates=2, placebo=True)
        assert len(server.requests) == before and again.from_cache  # verdicts memoised per pair
    # a scripted judge goes through the same code: one verdict list per replicate pair
    calls = []

    def rule(item):
        calls.append(item.id)
        return "a"

    res = evaluate(clean, corrupted, held, gen, cache, judge=ScriptedJudge(rule), replicates=2, placebo=True)
    assert len(calls) == 2 * 3 * 12 and res.win_rate == 1.0 and res.placebo.beats_placebo is not False


def test_calibrate_at_smoke_size(qa_split, cfg, cache):
    clean, _, held = qa_split
    cal = calibrate(clean, held, cfg, cache, comparisons=2, drop_fraction=0.1, replicates=2)
    assert len(cal.comparisons) == 2 and cal.dropped == 24 and cal.replicates == 2
    assert cal.comparisons[0].seed != cal.comparisons[1].seed  # each comparison its own seed block
    assert cal.win.detectable > 0 and cal.nll.detectable > 0
    assert cal.win.se >= cal.win.spread_sd and cal.win.se >= cal.win.interval_se
    text = cal.summary()
    assert "smallest effect detectable (alpha 0.05, power 80%)" in text and "false positives" in text
    with pytest.raises(Exception, match="at least 2"):
        calibrate(clean, held, cfg, cache, comparisons=1)


def test_bad_calls_fail_clearly(qa_split, cfg, cache):
    clean, corrupted, held = qa_split
    ev = Evaluation(clean, corrupted, held, cfg, cache)
    with pytest.raises(ValueError, match="no replicate"):
        ev.combine([])
    with pytest.raises(ValueError, match="replicates must be >= 1"):
        ev.run(0)
    with pytest.raises(ValueError, match="replicate index"):
        ev.replicate(-1)
    with pytest.raises(Exception, match="cannot drop 241 of 240"):
        random_drop(clean, 241, 0)
    no_placebo = ev.replicate(0)
    with pytest.raises(ValueError, match="no placebo arm"):
        Evaluation(clean, corrupted, held, cfg, cache, placebo=True).combine(
            [
                no_placebo.model_copy(
                    update={"evaluation": Evaluation(clean, corrupted, held, cfg, cache, placebo=True).key}
                )
            ]
        )


def test_workers_train_the_units_in_processes_with_the_same_result(qa_split, cfg, tmp_path):
    """Units trained by worker processes land in the memo; the evaluation is the one trained here."""
    clean, corrupted, held = qa_split
    one = evaluate(clean, corrupted, held, cfg, tmp_path / "serial", replicates=2)
    # generation on here (answers do not change the likelihood judge's verdicts)
    ev = Evaluation(
        clean, corrupted, held, cfg.with_overrides(workers=2, generate={"enabled": True}), tmp_path / "parallel"
    )
    assert len(ev.pending(2)) == 4
    assert ev.train_pending(2) == 4 and ev.pending(2) == []
    # the workers also answered and scored the held-out questions (the parent did it serially before)
    memo = {d: sorted(p.name for p in (tmp_path / "parallel" / d).iterdir()) for d in ("answers", "scores")}
    assert ev.needs_answers and len(memo["answers"]) == 4 and len(memo["scores"]) == 4
    two = ev.run(2)
    assert not any(a.trained_now for x in two.replicate_results for a in x.arms.values())
    assert memo == {d: sorted(p.name for p in (tmp_path / "parallel" / d).iterdir()) for d in memo}
    assert two.win_rate == one.win_rate and two.nll_diff == pytest.approx(one.nll_diff, abs=1e-9)


def test_tail_averaging_changes_the_model_and_its_key(qa_split, cfg, tmp_path):
    from autodp_eval import train_arm

    clean, _, _ = qa_split
    last = train_arm(clean, cfg, cache_dir=tmp_path)
    avg = train_arm(clean, cfg.with_overrides(train={"average_tail": 0.5}), cache_dir=tmp_path)
    assert avg.key != last.key and not avg.from_cache
    import torch
    from safetensors.torch import load_file

    a = load_file(f"{last.path}/model.safetensors")
    b = load_file(f"{avg.path}/model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)
