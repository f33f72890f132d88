"""The value types of the .dp language and how they map to Polars.

Types are small immutable values spelled the way users write them: ``str``, ``int``, ``float``,
``bool``, ``list[str]``, ``list[int]``... plus ``any`` for arguments that accept every type.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Type", "STR", "INT", "FLOAT", "BOOL", "ANY", "NUMBER", "parse_type", "from_polars", "assignable"]

_SCALARS = ("str", "int", "float", "bool", "any", "number")


@dataclass(frozen=True, slots=True)
class Type:
    """A .dp type: a scalar name, or ``list`` with an element type."""

    name: str
    item: Type | None = None

    def __str__(self) -> str:
        return f"list[{self.item}]" if self.name == "list" else self.name

    @property
    def is_numeric(self) -> bool:
        return self.name in ("int", "float", "number")

    def to_polars(self):
        import polars as pl

        match self.name:
            case "str":
                return pl.String
            case "int":
                return pl.Int64
            case "float" | "number":
                return pl.Float64
            case "bool":
                return pl.Boolean
            case "list":
                return pl.List(self.item.to_polars() if self.item else pl.String)
        return pl.String


STR, INT, FLOAT, BOOL, ANY = Type("str"), Type("int"), Type("float"), Type("bool"), Type("any")
NUMBER = Type("number")  # int or float: used in signatures only


def list_of(item: Type) -> Type:
    return Type("list", item)


def parse_type(text: str) -> Type:
    """Parse ``str``, ``list[int]`` ...; raise ValueError naming the valid types."""
    t = text.strip()
    if t.startswith("list[") and t.endswith("]"):
        return list_of(parse_type(t[5:-1]))
    if t == "list":
        return list_of(STR)
    if t in _SCALARS:
        return Type(t)
    raise ValueError(f"unknown type {text!r}; expected one of str, int, float, bool, list[...]")


def from_polars(dtype) -> Type:
    """The .dp type of a Polars dtype (unknown dtypes become ``any``)."""
    import polars as pl

    if dtype == pl.String or dtype == pl.Categorical or dtype == pl.Enum:
        return STR
    if dtype == pl.Boolean:
        return BOOL
    if dtype.is_integer():
        return INT
    if dtype.is_float() or dtype.is_decimal():
        return FLOAT
    if isinstance(dtype, pl.List | pl.Array):
        return list_of(from_polars(dtype.inner))
    return ANY


def assignable(src: Type, dst: Type) -> bool:
    """Can a value of type ``src`` be passed where ``dst`` is expected?"""
    if dst.name == "any" or src.name == "any":
        return True
    if dst.name == "number":
        return src.name in ("int", "float", "number")
    if dst.name == "float" and src.name == "int":
        return True
    if dst.name == "list" and src.name == "list":
        return dst.item is None or src.item is None or assignable(src.item, dst.item)
    return src.name == dst.name
