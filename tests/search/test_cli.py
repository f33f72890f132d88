"""``autodp search``: argument mapping and validation, refusal to overwrite a journal, exit codes,
the budget estimate."""

from __future__ import annotations

import argparse
import json

import pytest

from autodp_backends import exitcodes
from autodp_dsl.cli import main
from autodp_search import BackendFailure, Budget, EvalOutcome, NoValidStrategy, ScriptedEvaluator, estimate
from autodp_search.cli import build_config, register

from .helpers import ScriptedAgent, dp, qa_rows, write_jsonl


def parse(*argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    register(sub)
    return p.parse_args(["search", *argv])


def test_defaults_are_the_offline_main_job():
    a = parse("examples/medquad_sample.jsonl")
    cfg = build_config(a)
    assert cfg.agent == "offline" and cfg.k == 4 and cfg.budget.max_rounds == 3
    assert cfg.sampling and cfg.target_selection and cfg.cache and cfg.sample_fraction == 0.2
    assert cfg.target_judge == "weak" and build_config(parse("d.jsonl", "--target-judge", "offline")).target_judge == "offline"
    assert cfg.eval_preset == "quick"
    assert cfg.out_dir.endswith("runs/medquad_sample")
    assert a.func.__name__ == "run"


def test_switches_and_budgets():
    a = parse("d.jsonl", "--no-sampling", "--no-target-selection", "--no-cache", "--rounds", "5", "-k", "6",
              "--max-finetunes", "9", "--max-time", "60", "--patience", "2", "--agent", "llm", "--llm-base-url",
              "http://127.0.0.1:1/v1", "--eval-set", "train.epochs=6", "--out", "x")
    cfg = build_config(a)
    assert not (cfg.sampling or cfg.target_selection or cfg.cache)
    assert cfg.budget == Budget(max_rounds=5, max_finetunes=9, max_wall_s=60, patience=2)
    assert cfg.k == 6 and cfg.k_max >= 6
    assert cfg.llm.base_url == "http://127.0.0.1:1/v1"
    assert cfg.eval_overrides == {"train": {"epochs": 6}}


def test_refuses_to_overwrite_a_journal(tmp_path, capsys):
    from autodp_dsl.cli import main

    out = tmp_path / "run"
    (out / "journal").mkdir(parents=True)
    (out / "journal" / "meta.json").write_text('{"version": 1, "identity": {}, "config": {}}')  # an earlier run's
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n')
    assert main(["search", str(data), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_a_journal_folder_autodp_did_not_write_is_not_a_run(tmp_path, capsys):
    """journal/ with a meta.json that is not a search's: not an earlier run, even with --force."""
    from autodp_dsl.cli import main

    out = tmp_path / "run"
    (out / "journal").mkdir(parents=True)
    (out / "journal" / "meta.json").write_text("{}")
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n')
    assert main(["search", str(data), "--out", str(out), "--force"]) == 2
    assert "not an autodp search run" in one_line(capsys.readouterr().err)
    assert (out / "journal" / "meta.json").read_text() == "{}"


def test_starting_over_deletes_only_the_journals_own_files(tmp_path):
    from autodp_search.journal import Journal

    j = Journal(tmp_path / "journal")
    j.start({"identity": {"a": 1}, "config": {}}, resume=False)
    j.write_setup({})
    j.write_plan(1, {}, wave=1)
    j.write_candidate("r1c2", {})
    j.write_round(1, {})
    j.write_final({})
    (tmp_path / "journal" / "day1.md").write_text("mine\n")
    (tmp_path / "journal" / "meta.json.bak").write_text("mine\n")
    assert j.start({"identity": {"a": 2}, "config": {}}, resume=False) is False
    assert sorted(p.name for p in (tmp_path / "journal").iterdir()) == ["day1.md", "meta.json", "meta.json.bak"]


def test_missing_data(tmp_path, capsys):
    assert main(["search", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")]) == exitcodes.FAILED
    assert "no such file" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def scripted(monkeypatch):
    """Make ``autodp search`` run the real loop with a scripted evaluator (and agent): returns
    ``install(agent=None, evaluator=None) -> evaluator``."""
    import autodp_search.loop as loop

    real = loop.run_search

    def install(agent=None, evaluator=None):
        ev = evaluator or ScriptedEvaluator(memo=False)
        monkeypatch.setattr(loop, "run_search", lambda cfg: real(cfg, evaluator=ev, agent=agent))
        return ev

    return install


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("d") / "qa.jsonl", qa_rows(300))


# small and fast: the scripted evaluator, 20 + 20 held-out questions, no target classifier
FAST = ["--heldout", "20", "--final-heldout", "20", "--sample-fraction", "0.5", "--no-target-selection", "--quiet"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # the reproductions of issue 12, as given
        (["--rounds", "-1"], "argument --rounds: must be at least 1, got -1"),
        (["-k", "-3"], "argument -k/--candidates: must be at least 1, got -3"),
        (["--sample-fraction", "0"], "argument --sample-fraction: must be in (0, 1], got 0"),
        (["--sample-fraction", "2"], "argument --sample-fraction: must be in (0, 1], got 2"),
        (["--max-time", "-5"], "argument --max-time: must be a positive number of seconds, got -5"),
        (["--k-min", "5", "--k-max", "1"], "--k-min 5 is greater than --k-max 1"),
        (["--heldout", "0"], "argument --heldout: must be at least 1, got 0"),
        (["--max-finetunes", "0"], "argument --max-finetunes: must be at least 1, got 0 (the baseline is a fine-tune run)"),
        (["--eval-set", "nonsense"], "--eval-set expects KEY=VALUE (an evaluation setting, e.g. train.epochs=6), got 'nonsense'"),
        (["--eval-set", "missing.jsonl"], "--eval-set expects KEY=VALUE (an evaluation setting, e.g. train.epochs=6), got 'missing.jsonl'"),
        (["--eval-set", "=3"], "--eval-set expects KEY=VALUE"),
        (["--eval-set", "train.epochs=0"], "train.epochs: Input should be greater than or equal to 1"),
        (["--eval-set", "no_such_setting=1"], "no_such_setting: Extra inputs are not permitted"),
        (["--eval-set", "train.epochs=2", "--eval-set", "train.epochs.x=1"], "epochs is set to a value, not a section"),
        # every other numeric option of the parser, out of its domain
        (["--rounds", "0"], "--rounds: must be at least 1"),
        (["--final-heldout", "0"], "--final-heldout: must be at least 1"),
        (["--k-min", "0"], "--k-min: must be at least 1"),
        (["--k-max", "0"], "--k-max: must be at least 1"),
        (["-k", "10", "--k-max", "5"], "-k 10 is outside --k-min 1 .. --k-max 5"),
        (["-k", "2", "--k-min", "3"], "-k 2 is outside --k-min 3 .. --k-max 8"),
        (["--max-finetunes", "-1"], "--max-finetunes: must be at least 1"),
        (["--patience", "0"], "--patience: must be at least 1"),
        (["--max-agent-calls", "0"], "--max-agent-calls: must be at least 1"),
        (["--max-repairs", "-1"], "--max-repairs: must be at least 0"),
        (["--refills", "-1"], "--refills: must be at least 0"),
        (["--seed", "-1"], "--seed: must be at least 0"),
        (["--max-time", "0"], "--max-time: must be a positive number of seconds"),
        (["--max-time", "nan"], "--max-time: expected a finite number, got 'nan'"),
        (["--sample-fraction", "inf"], "--sample-fraction: expected a finite number"),
        (["--sample-fraction", "-0.1"], "--sample-fraction: must be in (0, 1]"),
        (["--rounds", "2.5"], "--rounds: expected an integer, got '2.5'"),
        (["--eval-preset", "huge"], "unknown preset 'huge'"),
        (["--target-judge", "offline", "--no-target-selection"], "--target-judge offline trains the target selector"),
    ],
)
def test_options_out_of_their_domain_are_refused_before_anything_runs(argv, message, qa, tmp_path, scripted, capsys):
    ev = scripted()
    before = sorted(p.name for p in qa.parent.iterdir())
    assert main(["search", str(qa), "--out", str(tmp_path / "out"), *argv]) == exitcodes.USAGE
    assert message in one_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists() and sorted(p.name for p in qa.parent.iterdir()) == before
    assert ev.calls == 0


def test_in_domain_edges_are_accepted():
    a = parse("d.jsonl", "--sample-fraction", "1", "--max-repairs", "0", "--refills", "0", "--seed", "0", "-k", "1",
              "--k-min", "1", "--k-max", "1", "--max-time", "0.5")
    cfg = build_config(a)
    assert cfg.sample_fraction == 1.0 and cfg.k == cfg.k_min == cfg.k_max == 1 and cfg.budget.max_wall_s == 0.5
    assert build_config(parse("d.jsonl", "-k", "12")).k_max == 12  # without --k-max, k may exceed 8


def test_max_finetunes_counts_the_baseline_and_stops_the_search(qa, tmp_path, scripted, capsys):
    """--max-finetunes N: at most N fine-tune runs in the search, the baseline first. With 3 and 4
    candidates per round, the search stops after the baseline and two candidates."""
    agent = ScriptedAgent([[dp(f"w{n}", f"filter: words(output) >= {n}") for n in (5, 7, 16, 17)]])  # 4 different outputs
    ev = scripted(agent=agent)
    out = tmp_path / "o"
    assert main(["search", str(qa), "--out", str(out), "--max-finetunes", "3", "--no-final", *FAST]) == exitcodes.OK
    assert ev.trained == 3
    assert "fine-tune budget spent (3/3)" in json.loads((out / "report.json").read_text())["stop_reason"]


def test_a_fine_tune_budget_the_noise_band_spends_is_refused_in_one_line(qa, tmp_path, scripted, capsys):
    """With the noise band on, --max-finetunes 5 would be spent on the baseline and the band (9) and the
    search would stop before round 1 with exit 3: refused before anything runs (exit 2), saying the
    band's cost and the smallest budget that runs a round."""
    ev = scripted(evaluator=ScriptedEvaluator(noise=0.02))
    out = tmp_path / "o"
    assert main(["search", str(qa), "--out", str(out), "--max-finetunes", "5", *FAST]) == exitcodes.USAGE
    err = one_line(capsys.readouterr().err)
    assert "--max-finetunes 5 is spent before round 1" in err and "take 9" in err and "--max-finetunes 13 or more" in err
    assert ev.calls == 0 and not out.exists()


def test_max_finetunes_1_trains_the_baseline_only_and_finds_no_strategy(qa, tmp_path, scripted, capsys):
    ev = scripted()
    out = tmp_path / "o"
    rc = main(["search", str(qa), "--out", str(out), "--max-finetunes", "1", "--no-final", "--json", *FAST])
    assert rc == exitcodes.NO_STRATEGY and ev.trained == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["best"] is None
    assert "no valid strategy: no candidate was proposed before the search stopped (fine-tune budget spent (1/1))" \
        in one_line(captured.err)
    assert (out / "report.json").exists()


def test_no_valid_strategy_exits_3(qa, tmp_path, scripted, capsys):
    invalid = "dp: 1\nname: bad\nsteps:\n  - filter: words(output) >=\n"  # no machine-applicable fix
    scripted(agent=ScriptedAgent([[invalid]]))
    out = tmp_path / "o"
    assert main(["search", str(qa), "--out", str(out), "--rounds", "1", "--no-final", *FAST]) == exitcodes.NO_STRATEGY
    err = one_line(capsys.readouterr().err)
    assert "no valid strategy: no candidate was scored (1 invalid) before the search stopped (1 rounds done)" in err
    assert json.loads((out / "report.json").read_text())["candidates"][0]["status"] == "invalid"


class _FailingAgent(ScriptedAgent):
    def propose(self, context):
        raise ConnectionError("connection refused by http://127.0.0.1:1/v1")


class _BrokenEvaluator(ScriptedEvaluator):
    def evaluate(self, candidate, baseline, heldout, verdict=False):
        self.calls += 1
        return EvalOutcome(None, None, None, error="ModelLoadError: no such model: /nope")


@pytest.mark.parametrize(
    ("agent", "evaluator", "message"),
    [
        (_FailingAgent([[]]), None, "the agent failed to propose: ConnectionError: connection refused"),
        (None, _BrokenEvaluator(), "the baseline cannot be evaluated: ModelLoadError: no such model"),
    ],
)
def test_agent_or_backend_failure_exits_4(agent, evaluator, message, qa, tmp_path, scripted, capsys):
    scripted(agent=agent, evaluator=evaluator)
    assert main(["search", str(qa), "--out", str(tmp_path / "o"), "--no-final", *FAST]) == exitcodes.BACKEND
    assert message in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("error", "code"),
    [(NoValidStrategy("no candidate runs on the full data: [...]"), exitcodes.NO_STRATEGY),
     (BackendFailure("the agent failed to propose"), exitcodes.BACKEND)],
)
def test_how_a_search_ends_maps_to_its_code(error, code, qa, tmp_path, monkeypatch, capsys):
    import autodp_search.loop as loop

    def fail(cfg):
        raise error

    monkeypatch.setattr(loop, "run_search", fail)
    assert main(["search", str(qa), "--out", str(tmp_path / "o")]) == code
    assert str(error) in one_line(capsys.readouterr().err)


def test_unreadable_data_exits_1(tmp_path, capsys):
    bad = tmp_path / "d.parquet"
    bad.write_bytes(b"not a parquet file")
    assert main(["search", str(bad), "--out", str(tmp_path / "o"), "--no-final"]) == exitcodes.FAILED
    one_line(capsys.readouterr().err)


@pytest.mark.parametrize("final", [True, False])
def test_preflight_estimate(final):
    e = estimate(Budget(max_rounds=3), 4, 300, 1500, 10.0, final=final)
    assert e.evaluations == 12 + (1 if final else 0)
    # the verdict trains the candidate, the unprocessed data and a placebo per replicate
    assert e.finetunes == 13 + (3 if final else 0)
    assert e.seconds == pytest.approx(120 + (150 if final else 0))
    assert "pre-flight estimate" in e.text()
    capped = estimate(Budget(max_rounds=3, max_finetunes=5), 4, 300, 1500, 10.0, final=False)
    assert capped.finetunes == 5 and capped.evaluations == 4
    # racing: the noise band's arms and each round's racing fine-tunes count; the verdict's replicates too
    raced = estimate(Budget(max_rounds=3), 4, 300, 1500, 10.0, final=final, same_steps=True, race_finetunes=4,
                     band_arms=8, verdict_replicates=3)
    assert raced.finetunes == 1 + 8 + 3 * (4 + 4) + (9 if final else 0)
    assert raced.seconds == pytest.approx(10.0 * (8 + 24 + (9 if final else 0)))
    assert raced.seconds_max == raced.seconds  # one worker: every fine-tune one after another
    # two workers train the band's arms, a round's first replicates and the verdict's arms two at a
    # time, race steps one at a time: the expected time, beside the maximum
    two = estimate(Budget(max_rounds=3), 4, 300, 1500, 10.0, final=final, same_steps=True, race_finetunes=4,
                   band_arms=8, verdict_replicates=3, workers=2)
    assert two.finetunes == raced.finetunes and two.seconds_max == raced.seconds
    assert two.seconds == pytest.approx(10.0 * (4 + 3 * (2 + 4) + (5 if final else 0)))
    assert "with 2 workers, at most" in two.text()


def main_job_estimate(argv: list[str]):
    """The pre-flight estimate's fine-tunes for ``autodp search`` with ``argv`` on the shipped example,
    as the main job measured it: 279 rows searched, 1600 in all, 29.3 s per fine-tune."""
    cfg = build_config(parse("examples/medquad_sample.jsonl", *argv))
    band = (len(cfg.noise_fractions) + 1) * cfg.noise_replicates - 1
    return estimate(cfg.budget, cfg.k, 279, 1600, 29.3, same_steps=True, race_finetunes=cfg.race_finetunes,
                    band_arms=band, verdict_replicates=cfg.verdict_replicates, workers=cfg.eval_workers)


def test_the_main_job_spends_a_quarter_fewer_fine_tunes():
    """scripts/search.sh against the main job as measured (the defaults with --eval-workers 2: at most
    42 fine-tunes, 10 min 35 s): at least 25% fewer fine-tunes by the same estimate, the placebo band
    and the verdict's replicates kept."""
    import shlex
    from pathlib import Path

    script = (Path(__file__).parents[2] / "scripts" / "search.sh").read_text()
    line = next(x for x in script.splitlines() if x.startswith("exec autodp search"))
    argv = [a for a in shlex.split(line)[4:] if a != "$@"]
    before, after = main_job_estimate(["--eval-workers", "2"]), main_job_estimate(argv)
    assert before.finetunes == 42
    assert after.finetunes <= 0.75 * before.finetunes
    cfg = build_config(parse("d.jsonl", *argv))
    assert cfg.noise_replicates == 3 and cfg.verdict_replicates == 3 and cfg.final


@pytest.mark.parametrize("cache", ["d.jsonl", "ds", "ds/sub", "."])
def test_cache_dir_may_not_be_or_hold_the_data(tmp_path, monkeypatch, capsys, cache):
    """--cache-dir is where models and answers are written: never the data, inside a data folder, or
    around it (refused before anything is read or written)."""
    from autodp_dsl.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "data.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    data = "d.jsonl" if cache in ("d.jsonl", ".") else "ds"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["search", data, "--out", "o", "--cache-dir", cache]) == 2
    assert "--cache-dir" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("agent", ["offline", "llm"])
def test_the_preflight_fine_tunes_are_at_most_what_the_agent_may_propose(agent):
    """The LLM agent is asked for between --k-min and --k-max proposals and the loop keeps up to
    --k-max (8) of them: the estimate's "at most" counts k_max first replicates a round for it, not
    the suggested -k (4). The offline agents propose -k at most."""
    from types import SimpleNamespace

    from autodp_search.loop import Search

    cfg = build_config(parse("d.jsonl", "--agent", agent, "--rounds", "2", "--race-finetunes", "2",
                             *(["--llm-base-url", "http://127.0.0.1:9/v1", "--llm-model", "m"] if agent == "llm" else [])))
    frame = SimpleNamespace(height=300)
    s = SimpleNamespace(cfg=cfg, r0=SimpleNamespace(seconds=10.0), band_cost=8, train_steps=None, racing=True,
                        search_frame=frame, full_frame=frame, console=SimpleNamespace(print=lambda *a: None))
    Search._estimate(s)
    per_round = cfg.k_max if agent == "llm" else cfg.k
    assert (cfg.k, cfg.k_max) == (4, 8)
    assert s.estimate.finetunes == 1 + 8 + 2 * (per_round + 2) + 3 * cfg.verdict_replicates
