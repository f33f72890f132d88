"""Test operators and IR builders for the engine tests (no dependence on the stdlib ops in progress)."""

from __future__ import annotations

import polars as pl

import stdlib_ops
from autodp_dsl import ir
from autodp_dsl.ops import KEEP, REASON, ROW_ID, Arg, Cost, Op, OpKind, Params, Registry
from autodp_dsl.types import BOOL, INT, STR

CALLS = {"t.count": 0}


class TLen(Op):
    """Length of a text (row-wise; commutes)."""

    name = "t.len"
    kind = OpKind.SIGNAL
    args = (Arg("text", STR),)
    returns = INT
    commutes = True

    def expr(self, args, params):
        return args[0].str.len_chars().fill_null(0).cast(pl.Int64)


class TDigits(Op):
    """Number of digits (row-wise; commutes)."""

    name = "t.digits"
    kind = OpKind.SIGNAL
    args = (Arg("text", STR),)
    returns = INT
    commutes = True

    def expr(self, args, params):
        return args[0].str.count_matches(r"\d").fill_null(0).cast(pl.Int64)


class TCount(Op):
    """A signal that counts the rows it computes (a Python UDF), to prove nodes run once."""

    name = "t.count"
    kind = OpKind.SIGNAL
    args = (Arg("text", STR),)
    returns = INT
    commutes = True

    def expr(self, args, params):
        def f(s: pl.Series) -> pl.Series:
            CALLS["t.count"] += len(s)
            return s.str.len_bytes().cast(pl.Int64)

        return args[0].map_batches(f, return_dtype=pl.Int64)


class TRank(Op):
    """Rank of the text's length among the rows present: NOT row-wise (does not commute)."""

    name = "t.rank"
    kind = OpKind.SIGNAL
    args = (Arg("text", STR),)
    returns = INT

    def expr(self, args, params):
        return args[0].str.len_chars().rank("ordinal").cast(pl.Int64)


class UpperParams(Params):
    suffix: str = ""


class TUpper(Op):
    """Upper-case a column (map; commutes)."""

    name = "t.upper"
    kind = OpKind.MAP
    args = (Arg("col", STR, column=True, variadic=True),)
    Params = UpperParams
    commutes = True

    def map_expr(self, col, params):
        return col.str.to_uppercase() + pl.lit(params.suffix)


class TStrip(Op):
    """Strip whitespace (map; commutes)."""

    name = "t.strip"
    kind = OpKind.MAP
    args = (Arg("col", STR, column=True, variadic=True),)
    commutes = True

    def map_expr(self, col, params):
        return col.str.strip_chars()


class TNonEmpty(Op):
    """Keep rows whose text is not empty (filter op; commutes)."""

    name = "t.nonempty"
    kind = OpKind.FILTER
    args = (Arg("text", STR),)
    commutes = True

    def keep(self, args, params):
        return args[0].str.strip_chars().str.len_chars() > 0


class TReasoned(Op):
    """Drop rows containing 'spam' or 'junk' and say which (a REASON column)."""

    name = "t.reasoned"
    kind = OpKind.FILTER
    args = (Arg("text", STR),)

    def lower(self, lf, args, params, ctx):
        t = ctx.expr(args[0])
        return lf.with_columns(
            (~t.str.contains("spam|junk")).alias(KEEP),
            pl.when(t.str.contains("spam")).then(pl.lit("contains spam")).when(t.str.contains("junk")).then(pl.lit("contains junk")).alias(REASON),
        )


class TFirst(Op):
    """Keep the first row (lowest id) of each value (a global step, like exact dedup)."""

    name = "t.first"
    kind = OpKind.GLOBAL
    args = (Arg("text", STR, variadic=True),)

    def lower(self, lf, args, params, ctx):
        key = pl.concat_str([ctx.expr(a).fill_null("") for a in args], separator="\x1f")
        lf, col = ctx.statistic(lf, "t.first.key", {"op": self.name, "v": self.version, "args": [ir.expr_text(a) for a in args]}, key)
        return lf.with_columns((pl.col(ROW_ID) == pl.col(ROW_ID).min().over(col)).alias(KEEP))


class TShout(Op):
    """A 'model' map (expensive kind): appends '!'."""

    name = "t.shout"
    kind = OpKind.MAP
    cost = Cost.MODEL
    args = (Arg("col", STR, column=True),)

    def map_expr(self, col, params):
        return col + pl.lit("!")


TEST_OPS = (TLen, TDigits, TCount, TRank, TUpper, TStrip, TNonEmpty, TReasoned, TFirst, TShout)


def make_registry(*extra: type[Op], replace: dict[str, type[Op]] | None = None) -> Registry:
    reg = Registry()
    stdlib_ops.register(reg)
    replace = replace or {}
    for op in TEST_OPS + extra:
        reg.add(replace.get(op.name, op))
    return reg


# ---------------------------------------------------------------- IR builders


def col(name: str, t=STR) -> ir.Col:
    return ir.Col(name, t)


def lit(v) -> ir.Lit:
    t = BOOL if isinstance(v, bool) else INT if isinstance(v, int) else STR if isinstance(v, str) else ir.Lit(v).type
    return ir.Lit(v, t)


def call(op: str, *args, t=INT, **params) -> ir.Call:
    return ir.Call(op, tuple(args), tuple(sorted(params.items())), t)


def cmp(op: str, left, right) -> ir.BinOp:
    return ir.BinOp(op, left, right if isinstance(right, ir.Col | ir.Call | ir.BinOp | ir.Lit) else lit(right), BOOL)


def filt(op: str, left, right) -> ir.Filter:
    return ir.Filter(cmp(op, left, right))


def step(op: str, *args, **params) -> ir.OpStep:
    return ir.OpStep(op, tuple(args), tuple(sorted(params.items())))


def strategy(name: str, *steps) -> ir.Strategy:
    return ir.Strategy(name=name, steps=tuple(steps))


def sample_frame(n: int = 60) -> pl.DataFrame:
    rows = []
    for i in range(n):
        out = f"  answer {i % 17} with {i % 5} digits 12{i % 3} " if i % 7 else ""
        if i % 11 == 0:
            out += " spam"
        if i % 13 == 0:
            out += " junk"
        rows.append({"instruction": f"question {i % 23}", "output": out, "score": i % 10})
    return pl.DataFrame(rows)


class TBoom(Op):
    """A map that fails at run time on texts containing 'boom'."""

    name = "t.boom"
    kind = OpKind.MAP
    args = (Arg("col", STR, column=True),)

    def map_expr(self, col, params):
        def f(s: pl.Series) -> pl.Series:
            if s.str.contains("answer 3 ").any():
                raise ValueError("boom: cannot handle this row")
            return s

        return col.map_batches(f, return_dtype=pl.String)


TEST_OPS = (*TEST_OPS, TBoom)


class TEcho(Op):
    """A generate step: every row whose output mentions 'junk' (and is no echo) gets a copy; new rows
    leave ``__rid`` null and the executor gives them fresh ids."""

    name = "t.echo"
    kind = OpKind.GENERATE
    args = (Arg("col", STR, column=True),)

    def lower(self, lf, args, params, ctx):
        c = args[0].name
        new = lf.filter(pl.col(c).str.contains("junk") & ~pl.col(c).str.contains("echo")).with_columns(
            pl.lit(None, dtype=pl.UInt64).alias(ROW_ID), (pl.col(c) + pl.lit(" (echo)")).alias(c)
        )
        return pl.concat([lf, new], how="vertical_relaxed")


TEST_OPS = (*TEST_OPS, TEcho)
