"""The default registry: which operators ``autodp`` knows without being told.

Every ``autodp.ops`` entry point (``plugins``), read from the operator manifest when it is current
(``manifest``: no operator module is imported until an operator's class is asked for); otherwise
the entry points are loaded and the manifest is written for the next process. Loaded once per
process.
"""

from __future__ import annotations

from . import manifest
from .opregistry import Registry
from .plugins import load_entry_points

__all__ = ["registry"]

_DEFAULT: Registry | None = None


def registry() -> Registry:
    """The default registry: every ``autodp.ops`` entry point, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = manifest.load()
        if _DEFAULT is None:
            _DEFAULT, sources = load_entry_points()
            manifest.save(_DEFAULT, sources)
    return _DEFAULT
