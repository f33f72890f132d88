"""Exceptions raised by :mod:`autodp_eval`.

The tree::

    EvalError                    base class; every error below carries a one-line message
    ├── EvalInputError           data or held-out input unusable: missing file, unknown format,
    │                            missing column, empty data set
    ├── EvalConfigError          a configuration that cannot run: unknown preset or model,
    │                            inconsistent knobs
    ├── ModelLoadError           a base model could not be found or loaded offline
    └── BackendUnavailableError  an optional backend is missing (vLLM, the openai package, CUDA)

A judge never raises for a single item: a failed comparison is a ``Verdict`` with
``winner="failed"`` and the error text, counted as a failure in the win rate.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "EvalConfigError",
    "EvalError",
    "EvalInputError",
    "ModelLoadError",
]


class EvalError(Exception):
    """Base class of every error raised by autodp_eval."""


class EvalInputError(EvalError):
    """The data, the held-out questions or a file path cannot be used."""


class EvalConfigError(EvalError):
    """The evaluation configuration cannot run as given."""


class ModelLoadError(EvalError):
    """A base model could not be found or loaded (nothing is downloaded by default)."""


class BackendUnavailableError(EvalError):
    """An optional backend (vLLM, the openai package, a CUDA device) is not available."""
