"""``autodp search``: argument mapping, refusal to overwrite a journal, the budget estimate."""

from __future__ import annotations

import argparse

import pytest

from autodp_search import Budget, estimate
from autodp_search.cli import build_config, register


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
    (out / "journal" / "meta.json").write_text("{}")
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n')
    assert main(["search", str(data), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_missing_data(tmp_path, capsys):
    from autodp_dsl.cli import main

    assert main(["search", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.parametrize("final", [True, False])
def test_preflight_estimate(final):
    e = estimate(Budget(max_rounds=3), 4, 300, 1500, 10.0, final=final)
    assert e.evaluations == 12 + (1 if final else 0)
    assert e.finetunes == 13 + (2 if final else 0)
    assert e.seconds == pytest.approx(120 + (100 if final else 0))
    assert "pre-flight estimate" in e.text()
    capped = estimate(Budget(max_rounds=3, max_finetunes=5), 4, 300, 1500, 10.0, final=False)
    assert capped.finetunes == 5 and capped.evaluations == 4
