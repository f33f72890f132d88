"""An in-process vLLM engine (GPU; the optional ``vllm`` extra, in its own environment).

>>> b = VLLMBackend("Qwen/Qwen2.5-7B-Instruct", gpu_memory_utilization=0.8)   # doctest: +SKIP

``vllm`` is imported when the engine is first used. vLLM pins its own torch and transformers, so
it usually lives in a separate environment: there, prefer running ``vllm serve`` and pointing the
``openai`` backend at it. Generation goes through ``LLM.chat`` (whole batches; structured output
with vLLM's JSON-schema guided decoding); ``score`` reads prompt log-probabilities
(``prompt_logprobs=0``) of the completion's tokens.
"""

from __future__ import annotations

import threading
from typing import Any

from autodp_backends.errors import ConfigError, FailureKind, PermanentError, RequestError

from .base import BaseBackend, ChatPrompt, Sampling, ScoreItem

__all__ = ["VLLMBackend"]


class VLLMBackend(BaseBackend):
    """Batched generation and scoring with ``vllm.LLM`` (``engine_kwargs`` go to its constructor)."""

    kind = "vllm"
    supports_score = True
    batched = True

    def __init__(self, model: str, *, score_max_tokens: int = 512, **kw: Any):
        base_keys = {"memo", "concurrency", "max_retries", "malformed_retries", "backoff_base", "backoff_max", "stats", "chunk_size"}
        super().__init__(**{k: v for k, v in kw.items() if k in base_keys})
        self.engine_kwargs = {k: v for k, v in kw.items() if k not in base_keys}
        self._model = model
        self.score_max_tokens = score_max_tokens
        self._llm = None
        self._lock = threading.RLock()

    def load(self):
        with self._lock:
            if self._llm is None:
                try:
                    from vllm import LLM
                except ImportError as e:
                    raise ConfigError("the vllm backend needs the 'vllm' package on a CUDA machine (pip install 'autodp[vllm]'); or run `vllm serve` and use 'openai:MODEL@http://HOST:8000/v1'") from e
                self._llm = LLM(model=self._model, **self.engine_kwargs)
        return self._llm

    def _params(self, sampling: Sampling):
        from vllm import SamplingParams

        kw: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
            "stop": list(sampling.stop) or None,
        }
        if sampling.json_schema is not None:
            try:  # the name changed across vLLM versions
                from vllm.sampling_params import StructuredOutputsParams

                kw["structured_outputs"] = StructuredOutputsParams(json=sampling.json_schema)
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                kw["guided_decoding"] = GuidedDecodingParams(json=sampling.json_schema)
        return SamplingParams(**kw)

    def _complete_batch(self, prompts: list[ChatPrompt], sampling: Sampling) -> list[str | RequestError]:
        llm = self.load()
        with self._lock:
            try:
                outs = llm.chat([p.to_openai() for p in prompts], self._params(sampling), use_tqdm=False)
            except (RuntimeError, ValueError) as e:
                return [PermanentError(FailureKind.INTERNAL, f"{type(e).__name__}: {e}") for _ in prompts]
        return [o.outputs[0].text.strip() if o.outputs else PermanentError(FailureKind.INTERNAL, "no output") for o in outs]

    def _score_batch(self, items: list[ScoreItem]) -> list[tuple[float, int] | RequestError]:
        from vllm import SamplingParams

        llm = self.load()
        tok = llm.get_tokenizer()
        prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        prompts, spans = [], []
        for it in items:
            if it.context is not None:
                ctx = tok.apply_chat_template(it.context.to_openai(), tokenize=True, add_generation_prompt=True)
            else:
                ctx = [prefix]
            comp = tok(it.completion, add_special_tokens=False)["input_ids"][: self.score_max_tokens]
            prompts.append({"prompt_token_ids": list(ctx) + list(comp)})
            spans.append((len(ctx), comp))
        out: list[tuple[float, int] | RequestError] = []
        with self._lock:
            res = llm.generate(prompts, SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
        for r, (start, comp) in zip(res, spans, strict=True):
            try:
                lp = sum(r.prompt_logprobs[start + k][t].logprob for k, t in enumerate(comp))
                out.append((float(lp), len(comp)))
            except (TypeError, KeyError, IndexError) as e:
                out.append(PermanentError(FailureKind.INTERNAL, f"no prompt logprobs: {e}"))
        return out
