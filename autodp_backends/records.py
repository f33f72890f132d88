"""The plain part of a record's JSON: ``{name: obj.name}`` for names given once, in their order.

A ``to_json`` writes a stable wire format (report.json, the journal, the model memo's keys), so it
names its keys and their order explicitly instead of ``dataclasses.asdict``: some fields are renamed,
rounded, derived or left out, and a key added to a dataclass must not reach the format unasked.
``fields_dict`` writes the fields that pass through unchanged without spelling each name twice.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fields_dict"]


def fields_dict(obj: Any, *names: str) -> dict[str, Any]:
    """``{name: getattr(obj, name)}`` for each of ``names``, in that order (properties too)."""
    return {name: getattr(obj, name) for name in names}
