from __future__ import annotations

import pytest
from pydantic import ValidationError

from autodp_eval import PRESETS, EvalConfig, EvalConfigError, TrainConfig


def test_default_is_the_offline_tiny_recipe():
    cfg = EvalConfig()
    assert cfg.train.model == "tiny-llama"
    assert cfg.train.method == "full"
    assert cfg.judge.kind == "likelihood"
    assert cfg.threads == 1
    assert cfg == EvalConfig.preset("tiny")


def test_presets_validate_and_differ():
    assert {"tiny", "smoke", "smollm2-lora"} <= set(PRESETS)
    lora = EvalConfig.preset("smollm2-lora")
    assert lora.train.model == "smollm2-135m-instruct" and lora.train.method == "lora"
    smoke = EvalConfig.preset("smoke", train={"epochs": 3})
    assert smoke.train.epochs == 3 and smoke.train.tiny.hidden_size == 64  # nested overrides merge


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(EvalConfigError, match="smollm2-lora"):
        EvalConfig.preset("huge")


@pytest.mark.parametrize(
    "bad",
    [
        {"train": {"epochs": 0}},
        {"train": {"max_prompt_len": 200, "max_seq_len": 128}},
        {"train": {"tiny": {"hidden_size": 100, "num_heads": 3}}},
        {"judge": {"kind": "openai"}},  # no model
        {"unknown_knob": 1},
    ],
)
def test_bad_configs_are_rejected(bad):
    with pytest.raises(ValidationError):
        EvalConfig.model_validate(bad)


def test_model_alias():
    assert TrainConfig(model="smollm2").model == "smollm2-135m-instruct"
    assert TrainConfig(model="tiny").model == "tiny-llama"


def test_cache_key_ignores_threads_and_credentials_but_not_the_recipe():
    base = EvalConfig()
    assert base.cache_key() == base.with_overrides(threads=2).cache_key()
    assert (
        base.cache_key() == base.with_overrides(judge={"api_key_env": "OTHER", "concurrency": 9}).cache_key()
    )
    assert base.cache_key() != base.with_overrides(train={"max_steps": 400}).cache_key()
    assert base.cache_key() != base.with_overrides(judge={"tie_margin": 0.5}).cache_key()


def test_config_round_trips_through_json():
    cfg = EvalConfig.preset("smollm2-lora")
    assert EvalConfig.model_validate_json(cfg.model_dump_json()) == cfg
