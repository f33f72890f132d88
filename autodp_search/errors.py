"""How a search ends without a result; ``autodp search`` gives each its exit code (docs/cli.md).

    RuntimeError
    ├── BackendFailure    the agent or the evaluator back-end failed
    └── NoValidStrategy   no candidate runs on the full data
    ValueError
    └── SettingsError     settings that cannot run together, refused before anything runs (exit 2)
"""

from __future__ import annotations

__all__ = ["BackendFailure", "NoValidStrategy", "SettingsError"]


class BackendFailure(RuntimeError):
    """The agent or the evaluator back-end failed: an LLM endpoint down, the baseline that cannot be
    trained or judged (a model that cannot be loaded)."""


class NoValidStrategy(RuntimeError):
    """No candidate strategy can be used (none runs on the full data)."""


class SettingsError(ValueError):
    """Settings that cannot run together (e.g. a fine-tune budget the noise band spends before round
    1): refused before anything is trained or written."""
