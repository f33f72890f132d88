"""The LoRA path on a real architecture: a tiny Llama base, adapters trained, saved, reloaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from autodp_eval import ModelLoadError, generate_answers, score_references, train_arm
from autodp_eval._models import clear_loaded


def _digest(folder: str) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(folder).glob("*.safetensors")):
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def pretrained_base(qa_split, e2e_config, eval_cache):
    """A tiny Llama fully fine-tuned on the clean data: a stand-in for a pretrained model folder."""
    clean, corrupted, _ = qa_split
    return train_arm(clean, e2e_config, cache_dir=eval_cache, tokenizer_data=corrupted)


def test_lora_adapter_on_a_pretrained_tiny_llama(qa_split, e2e_config, pretrained_base, tmp_path):
    _, corrupted, held = qa_split
    before = _digest(pretrained_base.path)
    cfg = e2e_config.with_overrides(
        train={
            "model": pretrained_base.path,
            "method": "lora",
            "epochs": 3,
            "learning_rate": 1e-2,
            "lora_r": 4,
        }
    )
    arm = train_arm(corrupted, cfg, cache_dir=tmp_path)
    files = {p.name for p in Path(arm.path).iterdir()}
    assert arm.method == "lora" and arm.base_path == str(Path(pretrained_base.path).absolute())
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= files
    assert "model.safetensors" not in files  # only the adapter is stored
    assert _digest(pretrained_base.path) == before  # the base is untouched
    assert arm.train_loss_last_epoch < arm.train_loss_first_epoch

    # the adapter changes the model: the reference likelihoods differ from the base's
    base_scores = score_references(pretrained_base, held[:10], cfg, cache_dir=tmp_path)
    lora_scores = score_references(arm, held[:10], cfg, cache_dir=tmp_path)
    assert [round(s.nll, 4) for s in base_scores] != [round(s.nll, 4) for s in lora_scores]

    # reloaded from disk (base + adapter), it still answers and scores
    clear_loaded()
    again = train_arm(corrupted, cfg, cache_dir=tmp_path)
    assert again.from_cache and again.base_path == arm.base_path
    answers = generate_answers(again, held[:4], cfg, cache_dir=tmp_path)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
    assert len(score_references(again, held[10:14], cfg, cache_dir=tmp_path)) == 4


def test_lora_on_the_built_in_tiny_base_saves_the_base_once(qa_split, e2e_config, tmp_path):
    clean, _, held = qa_split
    cfg = e2e_config.with_overrides(train={"method": "lora", "max_steps": 3})
    arm = train_arm(clean[:64], cfg, cache_dir=tmp_path)
    assert arm.base_path and Path(arm.base_path).parent == tmp_path / "models"
    assert len(generate_answers(arm, ["What is Kalomi syndrome ?"], cfg, cache_dir=tmp_path)) == 1


def test_lora_targets_must_exist(qa_split, e2e_config, tmp_path):
    from autodp_eval import EvalConfigError

    cfg = e2e_config.with_overrides(
        train={"method": "lora", "lora_target_modules": ["c_attn"], "max_steps": 1}
    )
    with pytest.raises(EvalConfigError, match="q_proj"):
        train_arm(qa_split[0][:16], cfg, cache_dir=tmp_path)


def test_missing_models_are_not_downloaded(qa_split, e2e_config, tmp_path):
    cfg = e2e_config.with_overrides(train={"model": "no-such-org/no-such-model", "method": "lora"})
    with pytest.raises(ModelLoadError, match="offline"):
        train_arm(qa_split[0][:16], cfg, cache_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="no such model folder"):
        train_arm(
            qa_split[0][:16], e2e_config.with_overrides(train={"model": "./nowhere"}), cache_dir=tmp_path
        )
