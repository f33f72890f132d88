"""The in-process vLLM backend: runs only on a CUDA machine with the ``vllm`` extra installed."""

from __future__ import annotations

import importlib.util
import os

import pytest

from stdlib_ops.backends import ChatPrompt, Sampling, ScoreItem, VLLMBackend


def _cuda() -> bool:
    if importlib.util.find_spec("vllm") is None or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _cuda(), reason="needs CUDA and the vllm package")]


def test_vllm_generates_and_scores():
    model = os.environ.get("AUTODP_VLLM_TEST_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")
    b = VLLMBackend(model, memo=False, gpu_memory_utilization=0.3, enforce_eager=True)
    [r] = b.generate([ChatPrompt.user("What is the capital of France? Answer in one sentence.")], Sampling(max_tokens=24))
    assert r.ok and "Paris" in r.text
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    [j] = b.generate([ChatPrompt.user('Rate 1-10. Reply {"score": n}.')], Sampling(max_tokens=16, json_schema=schema))
    assert j.ok and '"score"' in j.text
    right, wrong = b.score([ScoreItem(ChatPrompt.user("What is the capital of France?"), "Paris."),
                            ScoreItem(ChatPrompt.user("Name a fruit."), "Paris.")])
    assert right.mean_nll < wrong.mean_nll

