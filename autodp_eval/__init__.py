"""autodp_eval: does a model fine-tuned on data A answer held-out questions better than one
fine-tuned on data B?

Train both arms with one recipe (:func:`train_arm`), answer the held-out questions
(:func:`generate_answers`), judge the answers pairwise (:class:`Judge`), and compute the win rate
with a bootstrap interval (:func:`win_rate`); :func:`evaluate` does all of it, memoised, over
R paired replicates (:class:`Evaluation`, :func:`replicate_interval`), optionally against placebo
arms that drop as many random rows; :func:`calibrate` measures the smallest detectable effect.

The default configuration runs offline on a CPU: a tiny Llama built from a config with a tokenizer
trained on the data, fully fine-tuned, and the :class:`LikelihoodJudge`. Importing this package
does not import torch, transformers or openai; they load when a model is trained or an LLM judged.

This package depends neither on the DSL (autodp_dsl, stdlib_ops) nor on the search (autodp_search).
"""

from __future__ import annotations

from ._arm import TrainedArm
from ._cache import resolve_cache_dir
from ._calibrate import Calibration, calibrate
from ._config import (
    EVAL_VERSION,
    PRESETS,
    EvalConfig,
    GenerateConfig,
    JudgeConfig,
    TinyModelSpec,
    TrainConfig,
)
from ._data import fingerprint_rows, load_rows, normalize_prompt, prompt_text, split_heldout
from ._evaluate import (
    SEED_BLOCK,
    ArmReport,
    Comparison,
    Contrast,
    EvalResult,
    Evaluation,
    HeldoutReport,
    PlaceboReport,
    ReplicateResult,
    arm_seed,
    evaluate,
    random_drop,
    run_in_processes,
)
from ._generate import generate_answers, vllm_available
from ._interval import Interval, detectable_effect, pool_intervals, replicate_interval, t_quantile
from ._judges import (
    Judge,
    JudgeItem,
    LikelihoodJudge,
    PairwiseLLMJudge,
    ScriptedJudge,
    Verdict,
    judge_from_config,
    parse_judge_reply,
)
from ._score import RefScore, mean_loss, score_references
from ._train import find_arm, train_arm
from ._winrate import SliceStats, WinRate, win_rate
from .errors import (
    BackendUnavailableError,
    EvalConfigError,
    EvalError,
    EvalInputError,
    ModelLoadError,
)

__all__ = [
    "ArmReport",
    "BackendUnavailableError",
    "Calibration",
    "Comparison",
    "Contrast",
    "EVAL_VERSION",
    "EvalConfig",
    "EvalConfigError",
    "EvalError",
    "EvalInputError",
    "EvalResult",
    "Evaluation",
    "GenerateConfig",
    "HeldoutReport",
    "Interval",
    "Judge",
    "JudgeConfig",
    "JudgeItem",
    "LikelihoodJudge",
    "ModelLoadError",
    "PRESETS",
    "PairwiseLLMJudge",
    "PlaceboReport",
    "RefScore",
    "ReplicateResult",
    "SEED_BLOCK",
    "ScriptedJudge",
    "SliceStats",
    "TinyModelSpec",
    "TrainConfig",
    "TrainedArm",
    "Verdict",
    "WinRate",
    "arm_seed",
    "calibrate",
    "detectable_effect",
    "evaluate",
    "find_arm",
    "fingerprint_rows",
    "generate_answers",
    "judge_from_config",
    "load_rows",
    "mean_loss",
    "normalize_prompt",
    "parse_judge_reply",
    "pool_intervals",
    "prompt_text",
    "random_drop",
    "replicate_interval",
    "run_in_processes",
    "t_quantile",
    "resolve_cache_dir",
    "score_references",
    "split_heldout",
    "train_arm",
    "vllm_available",
    "win_rate",
]
