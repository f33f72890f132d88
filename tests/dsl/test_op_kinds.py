"""One base class per operator kind: the kind follows from the class, the one method is checked.

The engine tests' operators (tests/engine/helpers.py) are written the older way (``Op`` with
``kind =``) and keep running the whole engine suite: that is the third-party compatibility check.
"""

from __future__ import annotations

import polars as pl
import pytest

from autodp_dsl import compile_text
from autodp_dsl.catalog import load_entry_points
from autodp_dsl.lower import Context, lower_strategy
from autodp_dsl.opbase import KIND_BASES
from autodp_dsl.ops import (
    KEEP,
    Arg,
    FilterOp,
    FrameMapOp,
    GenerateOp,
    GlobalOp,
    MapOp,
    ModelSignalOp,
    Op,
    OpKind,
    Registry,
    SignalOp,
)
from autodp_dsl.types import INT, STR


class Len(SignalOp):
    name = "k.len"
    args = (Arg("text", STR),)
    returns = INT

    def expr(self, args, params):
        return args[0].str.len_chars()


class Upper(MapOp):
    name = "k.upper"
    args = (Arg("col", STR, column=True, variadic=True),)

    def map_expr(self, col, params):
        return col.str.to_uppercase()


class Short(FilterOp):
    name = "k.short"
    args = (Arg("text", STR),)

    def keep(self, args, params):
        return args[0].str.len_chars() < 4


class OldShort(Op):
    """The API before the kind classes: ``Op`` with ``kind =`` and the matching method."""

    name = "k.old_short"
    kind = OpKind.FILTER
    args = (Arg("text", STR),)

    def keep(self, args, params):
        return args[0].str.len_chars() < 4


class Seen(ModelSignalOp):
    name = "k.seen"
    args = (Arg("text", STR),)
    returns = INT

    def signal_expr(self, args, params, ctx):
        return pl.lit(0 if ctx is None else 1)


@pytest.mark.parametrize(
    ("base", "kind"),
    [(SignalOp, "signal"), (ModelSignalOp, "signal"), (MapOp, "map"), (FrameMapOp, "map"), (FilterOp, "filter"), (GlobalOp, "global"), (GenerateOp, "generate")],
)
def test_the_kind_follows_from_the_class_and_is_a_class_attribute(base, kind):
    assert base.kind == kind
    assert type(base.kind) is OpKind


def test_a_class_without_its_one_method_is_refused_at_registration_and_instantiation():
    class NoExpr(SignalOp):
        name = "k.no_expr"

    class NoLower(GlobalOp):
        name = "k.no_lower"

    for cls, method in ((NoExpr, "expr"), (NoLower, "lower")):
        with pytest.raises(TypeError, match=f"does not implement {method}"):
            Registry().add(cls)
        with pytest.raises(TypeError):
            cls()


def test_a_kind_class_cannot_be_given_another_kind():
    with pytest.raises(TypeError, match="is a MapOp, whose kind is map"):

        class Confused(MapOp):
            name = "k.confused"
            kind = OpKind.FILTER

            def map_expr(self, col, params):
                return col


def test_kind_classes_and_old_style_ops_check_and_run_alike():
    reg = Registry()
    for op in (Len, Upper, Short, OldShort):
        reg.add(op)
    df = pl.DataFrame({"t": ["ab", "abcdef", "xyz"]}).with_row_index("__rid").with_columns(pl.col("__rid").cast(pl.UInt64))
    outs = []
    for filt in ("k.short", "k.old_short"):
        src = f"dp: 1\nname: t\ncolumns: {{t: str}}\nsteps:\n  - k.upper(t)\n  - {filt}(t)\n  - filter: k.len(t) >= 2\n"
        r = compile_text(src, reg=reg)
        assert r.ok, [d.message for d in r.diagnostics]
        outs.append(lower_strategy(r.strategy, df.lazy(), Context(reg)).collect())
    assert outs[0].equals(outs[1])
    assert outs[0]["t"].to_list() == ["AB", "XYZ"]
    assert KEEP not in outs[0].columns


def test_a_model_signal_without_a_context_is_asked_with_none():
    assert pl.select(Seen().expr([], None)).item() == 0
    assert pl.select(Seen().signal_expr([], None, object())).item() == 1


def test_every_stdlib_operator_is_written_with_a_kind_class():
    reg, _ = load_entry_points()
    for op in reg:
        base = next((b for b in op.__mro__ if b in KIND_BASES), None)
        assert base is not None and base.kind == op.kind, op.name
        assert not getattr(op, "__abstractmethods__", None), op.name

