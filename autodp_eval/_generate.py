"""Answers to held-out questions: greedy decoding with transformers (CPU or GPU) or vLLM (GPU)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ._arm import TrainedArm
from ._cache import arm_entry, atomic_write_json, read_list
from ._config import EvalConfig
from ._data import load_rows, prompt_text
from ._format import Formatter
from ._models import load_arm, set_threads
from .errors import BackendUnavailableError

__all__ = ["generate_answers"]


def _prompts(questions: Any) -> list[str]:
    if isinstance(questions, list | tuple) and all(isinstance(q, str) for q in questions):
        return list(questions)
    return [prompt_text(r["instruction"], r.get("input")) for r in load_rows(questions, category_column=None)]


def generate_answers(
    arm: TrainedArm, questions: Any, config: EvalConfig | None = None, *, cache_dir: str | Path | None = None
) -> list[str]:
    """Greedy answers of ``arm`` to ``questions`` (prompt strings, or rows whose prompts are used).

    The backend is ``config.generate.backend``: "transformers" (CPU or GPU) or "vllm" (GPU, LoRA
    adapters served as LoRA requests). Memoised by (arm, prompts, generation settings).
    """
    cfg = config or EvalConfig()
    prompts = _prompts(questions)
    if not prompts:
        return []
    g = cfg.generate
    work = {
        "prompts": prompts,
        "max_new": g.max_new_tokens,
        "rep": g.repetition_penalty,
        "backend": g.backend,
        "prompt_len": cfg.train.max_prompt_len,
    }
    path = arm_entry(cache_dir, "answers", arm.key, cfg, work)
    hit = read_list(path, len(prompts))
    if hit is not None:
        return [str(a) for a in hit]
    if g.backend == "vllm":
        answers = _generate_vllm(arm, prompts, cfg)
    else:
        answers = _generate_hf(arm, prompts, cfg)
    atomic_write_json(path, answers)
    return answers


def _generate_hf(arm: TrainedArm, prompts: list[str], cfg: EvalConfig) -> list[str]:
    import torch

    set_threads(cfg.threads)
    model, tok = load_arm(arm, cfg)
    tc, g = cfg.train, cfg.generate
    fmt = Formatter(
        tok, max_seq_len=tc.max_seq_len, max_prompt_len=tc.max_prompt_len, chat_template=tc.chat_template
    )
    ids = fmt.prompt_ids(prompts)
    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: dict[int, str] = {}
    with torch.no_grad():
        for start in range(0, len(order), g.batch_size):
            idx = order[start : start + g.batch_size]
            n = max(len(ids[i]) for i in idx)
            batch = torch.full((len(idx), n), fmt.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), n), dtype=torch.long)
            for j, i in enumerate(idx):  # left padding
                batch[j, n - len(ids[i]) :] = torch.tensor(ids[i])
                mask[j, n - len(ids[i]) :] = 1
            gen = model.generate(
                input_ids=batch.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=g.max_new_tokens,
                do_sample=False,
                repetition_penalty=g.repetition_penalty,
                pad_token_id=fmt.pad_id,
                eos_token_id=fmt.eos_id,
            )
            for j, i in enumerate(idx):
                out[i] = tok.decode(gen[j, n:], skip_special_tokens=True).strip()
    return [out[i] for i in range(len(ids))]


# --------------------------------------------------------------------------- vLLM

_ENGINE: dict[str, Any] = {}
_ENGINE_LOCK = threading.Lock()


def vllm_available() -> bool:
    """True when the vllm package imports and torch sees a CUDA device."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import vllm  # noqa: F401
    except Exception:
        return False
    return True


def vllm_engine(
    model: str,
    *,
    enable_lora: bool = False,
    max_lora_rank: int = 8,
    seed: int = 0,
    gpu_memory_utilization: float = 0.5,
) -> Any:
    """One in-process vLLM engine at a time (a new model path replaces the previous engine)."""
    try:
        from vllm import LLM
    except ImportError:
        raise BackendUnavailableError(
            "the vLLM backend needs the vllm package and a CUDA GPU (pip install 'autodp[vllm]' in its own "
            "environment); use generate.backend='transformers' on CPU"
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "the vLLM backend needs a CUDA GPU; use generate.backend='transformers'"
        )
    sig = f"{model}|{enable_lora}|{max_lora_rank}|{seed}"
    with _ENGINE_LOCK:
        if sig not in _ENGINE:
            _ENGINE.clear()
            torch.cuda.empty_cache()
            kwargs: dict[str, Any] = {
                "model": model,
                "seed": seed,
                "gpu_memory_utilization": gpu_memory_utilization,
            }
            if enable_lora:
                rank = 8  # vLLM accepts powers of two from 8
                while rank < max_lora_rank:
                    rank *= 2
                kwargs.update(enable_lora=True, max_lora_rank=rank, max_loras=2)
            _ENGINE[sig] = LLM(**kwargs)
        return _ENGINE[sig]


def _generate_vllm(arm: TrainedArm, prompts: list[str], cfg: EvalConfig) -> list[str]:
    from ._models import load_tokenizer

    tc, g = cfg.train, cfg.generate
    lora = arm.method == "lora"
    if lora and not arm.base_path:
        raise BackendUnavailableError(f"LoRA arm {arm.key[:12]} has no base model path for vLLM")
    engine = vllm_engine(
        arm.base_path if lora else arm.path,  # type: ignore[arg-type]
        enable_lora=lora,
        max_lora_rank=tc.lora_r,
        seed=tc.seed,
        gpu_memory_utilization=g.vllm_gpu_memory_utilization,
    )
    from vllm import SamplingParams

    tok = load_tokenizer(arm.path)
    fmt = Formatter(
        tok, max_seq_len=tc.max_seq_len, max_prompt_len=tc.max_prompt_len, chat_template=tc.chat_template
    )
    inputs = [{"prompt_token_ids": ids} for ids in fmt.prompt_ids(prompts)]
    params = SamplingParams(
        temperature=0.0, max_tokens=g.max_new_tokens, repetition_penalty=g.repetition_penalty, seed=tc.seed
    )
    request = None
    if lora:
        from vllm.lora.request import LoRARequest

        request = LoRARequest(f"arm-{arm.key[:12]}", int(arm.key[:7], 16) + 1, arm.path)
    outs = engine.generate(inputs, params, lora_request=request, use_tqdm=False)
    return [o.outputs[0].text.strip() for o in outs]
