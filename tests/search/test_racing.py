"""Racing replicates between candidates and the placebo rule (autodp_search.racing, docs/search.md
"Racing and the placebo band"): the decisions alone, then in the loop with a scripted evaluator
whose replicates carry seeded training noise."""

from __future__ import annotations

import json

import polars as pl
import pytest

from autodp_search import Budget, ScriptedEvaluator, SearchConfig, run_search
from autodp_search.agents.base import CandidateRecord
from autodp_search.prompts import history_text
from autodp_search.racing import NoiseBand, placebo_rule, race_interval, race_order

from .helpers import ScriptedAgent, dp, qa_rows, write_jsonl

# ---------------------------------------------------------------- the decisions


def rec(cid: str, wr: float, lo: float, hi: float, replicates: int = 1, status: str = "ok") -> CandidateRecord:
    return CandidateRecord(1, cid, "", status, delta=wr - 0.5, win_rate=wr, ci_low=lo, ci_high=hi, replicates=replicates)


def test_the_incumbent_races_first_then_the_candidates_that_overlap_it_best_first():
    pool = [rec("a", 0.70, 0.60, 0.80), rec("b", 0.65, 0.55, 0.75), rec("c", 0.62, 0.40, 0.61),
            rec("far", 0.30, 0.20, 0.40), rec("dup", 0.69, 0.6, 0.8, status="duplicate")]
    assert race_order(pool, 3) == ["a", "b", "c"]  # "far" is separated; duplicates never race
    capped = [rec("a", 0.70, 0.60, 0.80, replicates=3), rec("b", 0.65, 0.55, 0.75, replicates=3),
              rec("c", 0.62, 0.40, 0.61, replicates=2)]
    assert race_order(capped, 3) == ["c"]  # the incumbent at the cap races no more; a rival below it does


def test_the_race_ends_when_everyone_is_separated_or_capped():
    assert race_order([rec("a", 0.8, 0.7, 0.9), rec("b", 0.4, 0.3, 0.5)], 3) == []
    assert race_order([rec("a", 0.8, 0.7, 0.9, 3), rec("b", 0.75, 0.6, 0.9, 3)], 3) == []
    assert race_order([rec("a", 0.8, 0.7, 0.9)], 3) == []  # nothing to race against
    # a rival at the cap still overlapping: the incumbent gets replicates until they separate
    assert race_order([rec("a", 0.8, 0.7, 0.9, 1), rec("b", 0.75, 0.6, 0.9, 3)], 3) == ["a"]


def band(per_replicate=((0.45, 0.5, 0.55), (0.3, 0.35, 0.4))) -> NoiseBand:
    pts = []
    for f, xs in zip((0.1, 0.3), per_replicate, strict=True):
        m = sum(xs) / len(xs)
        pts.append({"fraction": f, "dropped": int(f * 100), "per_replicate": list(xs), "estimate": m,
                    "low": m - 0.1, "high": m + 0.1})
    return NoiseBand.from_points(pts)


def test_the_noise_band_pools_its_spread_and_interpolates_from_an_aa_point():
    b = band()
    assert b.sd == pytest.approx(0.05) and b.df == 4
    assert b.at(0.1)[0] == pytest.approx(0.5) and b.at(0.3)[0] == pytest.approx(0.35)
    assert b.at(0.2)[0] == pytest.approx(0.425)  # linear between the measured fractions
    assert b.at(0.9) == b.at(0.3)  # the nearest beyond the largest
    aa = b.at(0.0)
    assert aa[0] == 0.5 and aa[2] - 0.5 == pytest.approx(b.training_half_width(3))  # dropping nothing: A/A
    assert NoiseBand.from_dict(b.to_dict()) == b
    # the training term shrinks with the square root of the replicates: t(4) x sd / sqrt(R)
    assert b.training_half_width(1) == pytest.approx(2.776 * 0.05, rel=1e-3)
    assert b.training_half_width(4) == pytest.approx(b.training_half_width(1) / 2)


def test_the_interval_adds_the_bands_training_noise_to_the_questions():
    b = band()
    lo, hi = race_interval(0.7, 0.65, 0.75, 1, b, 0.05)  # one replicate: questions only from the evaluator
    assert hi - 0.7 == pytest.approx((0.05**2 + b.training_half_width(1) ** 2) ** 0.5)
    # two replicates: the pooled term, not the evaluator's one-degree-of-freedom interval
    assert race_interval(0.7, 0.0, 1.0, 2, b, 0.05)[1] < 0.9
    # three: the evaluator's own interval counts when it is wider
    assert race_interval(0.7, 0.2, 1.0, 3, b, 0.05) == (0.2, 1.0)
    assert race_interval(0.7, 0.65, 0.75, 1, None, 0.05) == (0.65, 0.75)  # no band: the evaluator's


def test_an_improvement_beats_both_the_unprocessed_data_and_the_placebo_of_its_size():
    b = band()
    beats = placebo_rule(0.70, 0.60, 0.80, b, 0.3)  # placebo at 30%: 0.35
    assert beats["beats_placebo"] is True and beats["improvement"] is True
    assert placebo_rule(0.55, 0.45, 0.65, b, 0.3)["improvement"] is False  # beats the placebo, not r0
    near = placebo_rule(0.62, 0.52, 0.72, b, 0.1)  # above 0.5 but within noise of a 10% random drop
    assert near["beats_placebo"] is None and near["improvement"] is False
    assert placebo_rule(0.2, 0.1, 0.3, b, 0.1)["beats_placebo"] is False
    assert placebo_rule(0.7, 0.6, 0.8, None, 0.1)["improvement"] is None  # no band: no rule


# ---------------------------------------------------------------- in the loop


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("d") / "qa.jsonl", qa_rows(300))


A = dp("a", "filter: words(output) >= 8")  # scores 0.80
B = dp("b", "filter: words(output) >= 5")  # 0.78: close to A
C = dp("c", "filter: words(output) >= 20")  # 0.30: far below


def by_min_words(placebo: float = 0.5):
    """Scores by the shortest answer kept (what A, B and C change); random drops keep short answers
    and score ``placebo``, the unprocessed data 0.5."""
    def score(cand: pl.DataFrame, base: pl.DataFrame) -> float:
        m = cand["output"].str.split(" ").list.len().min()
        if m >= 20:
            return 0.30
        if m >= 8:
            return 0.80
        if m >= 5:
            return 0.78
        return 0.5 if cand.height == base.height else placebo
    return score


def cfg(data, out, **kw) -> SearchConfig:
    base = dict(data=str(data), out_dir=str(out), heldout_n=20, final_heldout_n=20, quiet=True,
                budget=Budget(max_rounds=1), sample_fraction=0.5, profile_k=5, final=False, race_finetunes=20)
    base.update(kw)
    return SearchConfig(**base)


def race_steps(out) -> list[dict]:
    return [s for p in sorted((out / "journal").glob("round-*.race.json")) for s in json.loads(p.read_text())["steps"]]


def test_close_candidates_race_to_the_cap_and_a_separated_one_keeps_one_replicate(data, tmp_path):
    ev = ScriptedEvaluator(by_min_words(), noise=0.02)
    res = run_search(cfg(data, tmp_path / "r"), evaluator=ev, agent=ScriptedAgent([[A, B, C]]))
    reps = {r.cid: r.replicates for r in res.records}
    assert reps == {"r1c1": 3, "r1c2": 3, "r1c3": 1}
    steps = race_steps(tmp_path / "r")
    assert [s["cid"] for s in steps] == ["r1c1", "r1c1", "r1c2", "r1c2"]  # the incumbent first
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["selection"]["replicates"] == reps and rep["noise_band"]["df"] == 4
    # every fine-tune counted: the baseline, the band's arms, first replicates and the race
    assert rep["budget_used"]["finetunes"] == ev.trained == 1 + 8 + 3 + 4
    assert rep["estimate"]["finetunes"] >= ev.trained


def test_separated_candidates_get_no_extra_replicate(data, tmp_path):
    ev = ScriptedEvaluator(by_min_words(), noise=0.0)
    res = run_search(cfg(data, tmp_path / "r"), evaluator=ev, agent=ScriptedAgent([[A, C]]))
    assert {r.cid: r.replicates for r in res.records} == {"r1c1": 1, "r1c2": 1}
    assert race_steps(tmp_path / "r") == []


def test_the_racing_budget_counts_fine_tunes_per_round(data, tmp_path):
    ev = ScriptedEvaluator(by_min_words(), noise=0.02)
    res = run_search(cfg(data, tmp_path / "r", race_finetunes=3, budget=Budget(max_rounds=2)), evaluator=ev,
                     agent=ScriptedAgent([[A, B, C], [dp("d", "filter: words(output) >= 9")]]))
    for rnd in (1, 2):
        steps = json.loads((tmp_path / "r" / "journal" / f"round-{rnd:04d}.race.json").read_text())["steps"]
        assert sum(s["finetunes"] for s in steps) <= 3
    assert res.report["budget_used"]["finetunes"] == ev.trained
    # with racing off, nobody gets a second replicate and there is no race file
    off = run_search(cfg(data, tmp_path / "off", race_replicates=1), evaluator=ScriptedEvaluator(by_min_words(), noise=0.02),
                     agent=ScriptedAgent([[A, B, C]]))
    assert {r.replicates for r in off.records} == {1} and not race_steps(tmp_path / "off")


def test_a_hard_fine_tune_budget_stops_the_race(data, tmp_path):
    ev = ScriptedEvaluator(by_min_words(), noise=0.02)
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=3, max_finetunes=13)), evaluator=ev,
                     agent=ScriptedAgent([[A, B, C]]))
    assert "fine-tune budget" in res.stop_reason and ev.trained <= 13 + 1


def test_the_placebo_rule_reaches_the_agent_and_the_report(data, tmp_path):
    # random drops score 0.79 here: A and B beat the unprocessed data but not dropping rows at random
    agent = ScriptedAgent([[A, B, C], [C]])
    res = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=2)),
                     evaluator=ScriptedEvaluator(by_min_words(placebo=0.79), noise=0.02), agent=agent)
    a = next(r for r in res.records if r.cid == "r1c1")
    assert a.ci_low > 0.5 and a.beats_placebo is None and a.improvement is False
    view = next(h for h in agent.contexts[1].history if h.cid == "r1c1")
    assert view.replicates == 3 and view.placebo == a.placebo and view.improvement is False
    text = history_text(agent.contexts[1])
    assert "over 3 replicates" in text and "placebo (as many rows dropped at random)" in text
    assert "improvement on the data: no" in text
    rep = res.report
    assert rep["selection"]["improvements"] == []
    assert "no candidate beat both the unprocessed data and the placebo of its own size" in rep["verdict_text"]
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'class="noise-band"' in html and 'class="placebo"' in html and "<th>replicates</th>" in html
    # the same candidates against a placebo band around 0.5: A and B are improvements
    res2 = run_search(cfg(data, tmp_path / "r2"), evaluator=ScriptedEvaluator(by_min_words(), noise=0.02),
                      agent=ScriptedAgent([[A, B, C]]))
    assert res2.report["selection"]["improvements"] == ["r1c1", "r1c2"]
    assert "2 of 3 candidates beat both" in res2.report["verdict_text"]


class Killed(BaseException):
    pass


class KillInRace(ScriptedEvaluator):
    """Dies (like a SIGKILL) at its ``at``-th request for more than one replicate: mid-race."""

    def __init__(self, *a, at: int, **kw):
        super().__init__(*a, **kw)
        self.at, self.race_calls = at, 0

    def evaluate(self, candidate, baseline, heldout, *, verdict=False, replicates=1):
        if replicates > 1:
            self.race_calls += 1
            if self.race_calls == self.at:
                raise Killed()
        return super().evaluate(candidate, baseline, heldout, verdict=verdict, replicates=replicates)


def test_resume_mid_race_replays_the_journaled_steps_and_ends_the_same(data, tmp_path):
    agent_rounds = [[A, B, C], [dp("d", "filter: words(output) >= 9"), B]]
    full_ev = KillInRace(by_min_words(), noise=0.02, at=0)
    full = run_search(cfg(data, tmp_path / "a", budget=Budget(max_rounds=2)), evaluator=full_ev,
                      agent=ScriptedAgent(agent_rounds))
    killer = KillInRace(by_min_words(), noise=0.02, at=3)
    with pytest.raises(Killed):
        run_search(cfg(data, tmp_path / "b", budget=Budget(max_rounds=2)), evaluator=killer,
                   agent=ScriptedAgent(agent_rounds))
    j = tmp_path / "b" / "journal"
    assert len(json.loads((j / "round-0001.race.json").read_text())["steps"]) == 2 and not (j / "round-0001.json").exists()
    ev = KillInRace(by_min_words(), noise=0.02, at=0, units=killer.units)  # what was trained stays trained
    resumed = run_search(cfg(data, tmp_path / "b", budget=Budget(max_rounds=2), resume=True), evaluator=ev,
                         agent=ScriptedAgent(agent_rounds))
    assert ev.race_calls == full_ev.race_calls - 2  # the two journaled steps are not asked again
    key = [(r.cid, r.delta, r.replicates, r.ci_low, r.ci_high, r.improvement) for r in full.records]
    assert [(r.cid, r.delta, r.replicates, r.ci_low, r.ci_high, r.improvement) for r in resumed.records] == key
    assert resumed.report["budget_used"]["finetunes"] == full.report["budget_used"]["finetunes"]


def test_training_ahead_in_workers_gives_the_same_scores_and_counts_every_arm(tmp_path):
    """``AutodpEvaluator.train_ahead`` (smoke preset, 2 workers) trains a wave's arms side by side;
    the evaluations then find them in the memo, score exactly as one worker does, and the arms
    trained are reported per candidate (the shared baseline once)."""
    from autodp_search import AutodpEvaluator

    rows = pl.DataFrame(qa_rows(160))
    held, base = rows.head(20), rows.tail(140)
    cands = [base.head(120), base.tail(110)]
    ahead = AutodpEvaluator("smoke", cache_dir=tmp_path / "a", workers=2)
    counts = ahead.train_ahead(cands, base, held)
    assert counts == [2, 1]  # the first candidate's arm and the baseline's, then the second's
    assert ahead.train_ahead(cands, base, held) == [0, 0]  # all in the memo now
    o = ahead.evaluate(cands[1], base, held)
    s = AutodpEvaluator("smoke", cache_dir=tmp_path / "s", workers=1).evaluate(cands[1], base, held)
    assert o.finetunes == 0 and s.finetunes == 2  # found in the memo / trained in process
    assert (o.win_rate, o.ci_low, o.ci_high, o.candidate_loss) == (s.win_rate, s.ci_low, s.ci_high, s.candidate_loss)


class AheadScripted(ScriptedEvaluator):
    """A scripted evaluator that trains a wave's arms ahead, like ``AutodpEvaluator.train_ahead``."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.ahead: list[int] = []

    def train_ahead(self, candidates, baseline, heldout, replicates=1):
        from autodp_search.evaluators import eval_frame

        base = eval_frame(baseline)
        out = [self._train([(_key(base), 0), (_key(eval_frame(c)), 0)]) for c in candidates]
        self.ahead.append(len(candidates))
        return out


def _key(frame: pl.DataFrame) -> str:  # the scripted evaluator's key of a data set
    import hashlib

    return hashlib.sha256(frame.write_ipc(None).getvalue()).hexdigest()


def test_arms_trained_ahead_are_journaled_with_their_candidates(data, tmp_path):
    ev = AheadScripted(by_min_words(), noise=0.02)
    # the third proposal keeps the same rows as the first: scored like it, so not trained ahead
    res = run_search(cfg(data, tmp_path / "r"), evaluator=ev,
                     agent=ScriptedAgent([[A, B, dp("a2", "filter: words(output) >= 9")]]))
    assert ev.ahead == [2]
    j = tmp_path / "r" / "journal"
    per_cand = {p.stem[5:]: json.loads(p.read_text())["finetunes"] for p in j.glob("cand-*.json")}
    assert per_cand == {"r1c1": 1, "r1c2": 1, "r1c3": 0}
    assert res.report["budget_used"]["finetunes"] == ev.trained


@pytest.mark.parametrize("failure", ["raises", "no question judged"])
def test_a_noise_band_that_cannot_be_measured_stops_the_search_cleanly(data, tmp_path, failure):
    """Like the baseline: a training error or a judge that failed every question of a band replicate is
    a BackendFailure (one line, exit 4), not a traceback from float(None) or the trainer."""
    from autodp_search.errors import BackendFailure

    class Broken(ScriptedEvaluator):
        def noise_band(self, *a, **kw):
            if failure == "raises":
                raise RuntimeError("tokenizer exploded")
            d = super().noise_band(*a, **kw)
            d["points"][0].update(estimate=None, low=None, high=None, per_replicate=[])
            return d

    with pytest.raises(BackendFailure, match="noise band cannot be measured"):
        run_search(cfg(data, tmp_path / "r"), evaluator=Broken(by_min_words(), noise=0.0), agent=ScriptedAgent([[A, C]]))


def test_a_failure_while_training_ahead_leaves_each_candidate_to_its_own_evaluation(data, tmp_path):
    """Training ahead only saves time: when it fails (one candidate's arm cannot be trained in a worker),
    the candidates are evaluated one by one as with one worker, not the whole search stopped."""
    calls = []

    class Flaky(ScriptedEvaluator):
        def train_ahead(self, candidates, baseline, heldout, replicates=1):
            calls.append(len(candidates))
            raise RuntimeError("worker died")

    res = run_search(cfg(data, tmp_path / "r"), evaluator=Flaky(by_min_words(), noise=0.0), agent=ScriptedAgent([[A, C]]))
    assert calls == [2]
    assert {r.cid: r.status for r in res.records} == {"r1c1": "ok", "r1c2": "ok"}


# ---------------------------------------------------------------- the budget counts what decisions ask for


D = dp("d", "filter: words(output) >= 9")


def test_a_warm_memo_races_like_a_cold_run(data, tmp_path):
    """The fine-tune budget (the race's and --max-finetunes) counts the fine-tunes a decision asks for,
    memoised or not: a second search on the first one's memo, where every arm is already trained,
    races the same candidates to the same replicates and stops for the same reason. Counting only the
    arms trained now, the warm run's race was free: it raced on past the cold run's budget."""
    units: set = set()
    runs = {}
    for name in ("cold", "warm"):
        ev = ScriptedEvaluator(by_min_words(), noise=0.02, units=units)
        res = run_search(cfg(data, tmp_path / name, race_finetunes=2, budget=Budget(max_rounds=2, max_finetunes=15)),
                         evaluator=ev, agent=ScriptedAgent([[A, B, C], [D]]))
        runs[name] = res, ev
    (cold, cold_ev), (warm, warm_ev) = runs["cold"], runs["warm"]
    assert warm_ev.trained == 0 and cold_ev.trained > 0
    assert {r.cid: r.replicates for r in warm.records} == {r.cid: r.replicates for r in cold.records}
    assert [(s["cid"], s["finetunes"]) for s in race_steps(tmp_path / "warm")] == \
        [(s["cid"], s["finetunes"]) for s in race_steps(tmp_path / "cold")]
    assert warm.stop_reason == cold.stop_reason == "fine-tune budget spent (15/15)"
    used_c, used_w = cold.report["budget_used"], warm.report["budget_used"]
    assert used_w["finetunes"] == used_c["finetunes"] == used_c["trained"] == cold_ev.trained and used_w["trained"] == 0
    assert used_c["finetunes"] <= cold.report["estimate"]["finetunes"]


def test_a_race_step_past_the_baselines_replicates_counts_the_baselines_arm(data, tmp_path):
    """Without the noise band the baseline has one replicate: the incumbent's second replicate needs
    the baseline's second too, two fine-tunes; its third would need two more, and a race budget of 3
    has one left: the race ends there, within its budget."""
    ev = ScriptedEvaluator(by_min_words(), noise=0.02)
    run_search(cfg(data, tmp_path / "r", race_finetunes=3, noise_replicates=0), evaluator=ev,
               agent=ScriptedAgent([[A, B, C]]))
    steps = race_steps(tmp_path / "r")
    assert [(s["cid"], s["finetunes"], s["trained"]) for s in steps] == [("r1c1", 2, 2)]


class AheadThenStop(AheadScripted):
    """Trains a wave's arms ahead, then a STOP file appears (before the first candidate is evaluated)."""

    def __init__(self, *a, stop_file=None, **kw):
        super().__init__(*a, **kw)
        self.stop_file = stop_file

    def train_ahead(self, candidates, baseline, heldout, replicates=1):
        out = super().train_ahead(candidates, baseline, heldout, replicates)
        if self.stop_file is not None:
            self.stop_file.write_text("")
        return out


def test_arms_trained_ahead_are_journaled_when_the_search_stops_before_evaluating_them(data, tmp_path):
    """A stop between candidates (STOP file, time) after the wave's arms were trained ahead: they are
    journaled (round-NNNN.ahead.json) and in the memo, so --resume evaluates their candidates without
    training them again and every arm is counted once over both sessions."""
    out = tmp_path / "r"
    agent = [[A, B, C]]
    ev = AheadThenStop(by_min_words(), noise=0.02, stop_file=out / "STOP")
    first = run_search(cfg(data, out), evaluator=ev, agent=ScriptedAgent(agent))
    assert "stop file" in first.stop_reason and not first.records
    assert json.loads((out / "journal" / "round-0001.ahead.json").read_text())["arms"] == {"r1c1": 1, "r1c2": 1, "r1c3": 1}
    assert first.report["budget_used"]["trained"] == ev.trained == 1 + 8 + 3
    (out / "STOP").unlink()
    ev2 = AheadThenStop(by_min_words(), noise=0.02, units=ev.units)
    res = run_search(cfg(data, out, resume=True), evaluator=ev2, agent=ScriptedAgent(agent))
    assert ev2.trained == sum(s["trained"] for s in race_steps(out))  # only the race's arms are new
    cold_ev = ScriptedEvaluator(by_min_words(), noise=0.02)
    cold = run_search(cfg(data, tmp_path / "cold"), evaluator=cold_ev, agent=ScriptedAgent(agent))
    assert {r.cid: r.replicates for r in res.records} == {r.cid: r.replicates for r in cold.records}
    assert res.report["budget_used"]["finetunes"] == cold.report["budget_used"]["finetunes"]
    assert res.report["budget_used"]["trained"] == len(ev2.units) == cold_ev.trained


def test_a_budget_the_noise_band_spends_before_round_1_is_refused_before_anything_runs(data, tmp_path):
    ev = ScriptedEvaluator(by_min_words(), noise=0.02)
    from autodp_search import SettingsError

    with pytest.raises(SettingsError, match=r"--max-finetunes 12 is spent before round 1: the baseline \(1\) and the "
                                            r"noise band \(8: .*\) take 9; one round of 4 candidates needs "
                                            r"--max-finetunes 13 or more \(or --noise-replicates 0"):
        run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1, max_finetunes=12)), evaluator=ev,
                   agent=ScriptedAgent([[A, B, C]]))
    assert ev.calls == 0 and not (tmp_path / "r").exists()
    ok = run_search(cfg(data, tmp_path / "r", budget=Budget(max_rounds=1, max_finetunes=13)), evaluator=ev,
                    agent=ScriptedAgent([[A, B, C]]))
    assert [r.status for r in ok.records] == ["ok"] * 3
    # without the band (or with an evaluator that does not replicate) a small budget is the user's choice
    run_search(cfg(data, tmp_path / "off", noise_replicates=0, budget=Budget(max_rounds=1, max_finetunes=2)),
               evaluator=ScriptedEvaluator(by_min_words(), noise=0.02), agent=ScriptedAgent([[A, B, C]]))


@pytest.mark.parametrize("tampered", ['{"round": 1, "arms": {"r1c1": "1", "r1c2": null, "r1c3": true}}',
                                      '{"round": 1, "arms": ["r1c1", "r1c2"]}', '[1, 2]', '{"round": 1, "arms": {"r1c1": -5}}'])
def test_a_tampered_ahead_file_is_read_as_no_arms_not_a_crash_on_resume(data, tmp_path, tampered):
    """round-NNNN.ahead.json only carries a count for the report: on --resume, entries that are not a
    candidate id and a count of arms (>= 0) are left out, like an unreadable file, instead of a
    TypeError (exit 70) from adding a string to the count. The search's decisions do not depend on it."""
    out = tmp_path / "r"
    agent = [[A, B, C]]
    ev = AheadThenStop(by_min_words(), noise=0.02, stop_file=out / "STOP")
    run_search(cfg(data, out), evaluator=ev, agent=ScriptedAgent(agent))
    (out / "STOP").unlink()
    (out / "journal" / "round-0001.ahead.json").write_text(tampered)
    res = run_search(cfg(data, out, resume=True), evaluator=AheadThenStop(by_min_words(), noise=0.02, units=ev.units),
                     agent=ScriptedAgent(agent))
    assert [r.status for r in res.records] == ["ok"] * 3
    assert isinstance(res.report["budget_used"]["trained"], int) and res.report["budget_used"]["trained"] >= 0
