"""The type checker: untyped AST + column schema -> typed IR, with every problem at once.

Checking never stops at the first error: each step is checked against the columns that exist at
that point (assignments add columns, ``drop`` removes them, ``where:`` blocks add theirs for all
rows), and every problem becomes a located ``Diagnostic``. A strategy without errors is returned
as an ``ir.Strategy`` whose expressions all carry their types.
"""

from __future__ import annotations

import difflib
from typing import Any

from . import ir
from .declarations import OpKind
from .diagnostics import Diagnostic, Severity
from .document import Locator, RawDocument, RawStep
from .edits import name_fixes
from .opregistry import Registry
from .syntax import (
    AAssign,
    ABin,
    ACall,
    ACol,
    AKwarg,
    AList,
    ALit,
    AUn,
    SyntaxProblem,
    parse_expr,
    parse_step,
)
from .types import BOOL, FLOAT, INT, STR, Type, assignable, list_of, parse_type

__all__ = ["DEFAULT_COLUMNS", "check_document"]

# Assumed when neither the data nor the document says which columns exist: the Alpaca shape.
DEFAULT_COLUMNS: dict[str, Type] = {"instruction": STR, "input": STR, "output": STR}
DEFAULT_REQUIRED = ("instruction", "output")

_SYNTAX_HINTS = {
    "≥": "write `>=`",
    "≤": "write `<=`",
    "≠": "write `!=`",
    "&": "write `and`",
    "|": "write `or`",
    "!": "write `not` (or `!=` to compare)",
    "=": "write `==` to compare; `name = expr` defines a column only as a whole step",
    "'": "strings use double or single quotes, closed on the same line",
    ":": "a step with `: ` inside must be quoted in YAML, or use the `filter:` / `where:` mapping form",
}


# letters of other scripts drawn like Latin ones (the common part of Unicode's confusables table);
# with NFKC (which also folds NFC/NFD forms and full-width letters) they give a name's "skeleton"
_LOOK_ALIKE = str.maketrans(
    "аАвВеЕкКмМнНоОрРсСтТуУхХіІјЈѕЅԁԛԝһӏɑαΑβΒεΕζΖηΗιΙκΚμΜνΝοΟρΡτΤυΥχΧ",
    "aABBeEkKmMHHoOpPcCTTyYxXiIjJsSdqwhlaaABBeEZZnHiIkKuMvNoOpPtTuYxX",
)


def skeleton(name: str) -> str:
    """What ``name`` looks like: equal skeletons, different names are look-alikes."""
    if name.isascii():
        return name
    import unicodedata

    return unicodedata.normalize("NFKC", name).translate(_LOOK_ALIKE)


def _odd_chars(name: str) -> str:
    import unicodedata

    odd = [f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in name if not c.isascii()]
    return ", ".join(odd[:3]) if odd else "the same letters in another Unicode form"


def _did_you_mean(names: list[str]) -> list[str]:
    return [f"did you mean {' or '.join(f'`{n}`' for n in names)}?"] if names else []


class _Checker:
    def __init__(self, registry: Registry, file: str | None, max_depth: int):
        self.reg = registry
        self.file = file
        self.max_depth = max_depth
        self.diags: list[Diagnostic] = []
        self.written: dict[str, tuple] = {}  # column -> where a step last assigned or removed it
        self.look_alikes: set[tuple[str, str]] = set()  # (name, other) pairs already reported
        self.non_ascii = False  # some input column has a non-ASCII name (steps only add ASCII names)
        self.trace = None  # trace(raw, columns, done): called before and after each step (the language server)

    # ---------------------------------------------------------------- reporting
    def error(self, code: str, message: str, loc: Locator, start: int, end: int, hints=(), path=None, severity=Severity.ERROR):
        line, col = loc.at(start)
        end_line, end_col = loc.at(end)
        self.diags.append(Diagnostic(code, message, line, col, end_col if end_line == line and end_col > col else None,
                                     severity, list(hints), path, self.file))

    def fix_last(self, name: str, pool, suggestions: list[str], loc: Locator, start: int, end: int, render=str) -> None:
        """Attach the name fixes (see ``fixes``) to the diagnostic just reported."""
        line, col = loc.at(start)
        end_line, end_col = loc.at(end)
        if end_line == line:
            self.diags[-1].fixes = name_fixes(name, pool, suggestions, line, col, end_col, loc.exact, render)

    def look_alike(self, name: str, env: dict[str, Type], loc: Locator, start: int, end: int, path: str) -> str | None:
        """Warn once when ``name`` looks like another column's name (Cyrillic `о` for Latin `o`,
        NFD for NFC): the step would silently work on the wrong column. Returns that column."""
        if name.isascii() and not self.non_ascii:
            return None
        sk = skeleton(name)
        for other in env:
            if other != name and skeleton(other) == sk:
                if (name, other) not in self.look_alikes:
                    self.look_alikes.add((name, other))
                    self.error("confusable-column", f"column `{name}` looks like `{other}` but is another name ({_odd_chars(name if not name.isascii() else other)})",
                               loc, start, end, [f"type the name again: did you mean `{other}`?"], path, Severity.WARNING)
                return other
        return None

    # ---------------------------------------------------------------- expressions
    def expr(self, node, env: dict[str, Type], loc: Locator, path: str) -> ir.Expr | None:
        match node:
            case ALit(value=v):
                if (type(v) is int and not _INT64[0] <= v <= _INT64[1]) or (type(v) is float and v - v != 0.0):
                    self.literal_in_range(v, node, loc, path)  # reports it
                    return None
                t = BOOL if isinstance(v, bool) else INT if isinstance(v, int) else FLOAT if isinstance(v, float) else STR
                return ir.Lit(v, t)
            case AUn(op="-", operand=ALit(value=v)) if isinstance(v, int | float) and not isinstance(v, bool):
                # -3 is a literal, not an operation (and -9223372036854775808 is in range)
                if not self.literal_in_range(-v, node, loc, path):
                    return None
                return ir.Lit(-v, INT if isinstance(v, int) else FLOAT)
            case AList(items=items):
                typed = [self.expr(i, env, loc, path) for i in items]
                if any(t is None for t in typed):
                    return None
                item_types = {str(t.type) for t in typed}
                if len(item_types) > 1 and not item_types <= {"int", "float"}:
                    self.error("type-mismatch", f"list items must have one type, found {', '.join(sorted(item_types))}", loc, node.start, node.end, path=path)
                    return None
                item = FLOAT if item_types == {"int", "float"} else (typed[0].type if typed else STR)
                return ir.ListLit(tuple(typed), list_of(item))
            case ACol(name=name):
                if name not in env:
                    if not name.isascii() or self.non_ascii:
                        real = [n for n in env if skeleton(n) == skeleton(name)]
                        if real:
                            self.error("unknown-column", f"unknown column `{name}`: it looks like `{real[0]}` but is another name ({_odd_chars(name)})",
                                       loc, node.start, node.end, [f"type the name again: did you mean `{real[0]}`?"], path)
                            self.fix_last(name, real, real, loc, node.start, node.end, ir.col_text)  # one look-alike: unambiguous
                            return None
                    close = difflib.get_close_matches(name, list(env), n=2)
                    hints = _did_you_mean(close)
                    hints.append("available columns: " + (", ".join(env) or "(none)"))
                    self.error("unknown-column", f"unknown column `{name}`", loc, node.start, node.end, hints, path)
                    self.fix_last(name, env, close, loc, node.start, node.end, ir.col_text)
                    return None
                if self.non_ascii or not name.isascii():
                    self.look_alike(name, env, loc, node.start, node.end, path)
                return ir.Col(name, env[name])
            case ACall():
                return self.signal_call(node, env, loc, path)
            case AUn(op=op, operand=operand):
                inner = self.expr(operand, env, loc, path)
                if inner is None:
                    return None
                if op == "not":
                    if not assignable(inner.type, BOOL):
                        self.error("type-mismatch", f"`not` needs a bool, found {inner.type}", loc, node.start, node.end, path=path)
                        return None
                    return ir.UnOp("not", inner, BOOL)
                if not inner.type.is_numeric and inner.type.name != "any":
                    self.error("type-mismatch", f"unary `-` needs a number, found {inner.type}", loc, node.start, node.end, path=path)
                    return None
                if isinstance(inner, ir.Lit):  # -(3) is the literal -3 too
                    return ir.Lit(-inner.value, inner.type)
                return ir.UnOp("-", inner, inner.type)
            case ABin(op=op, left=left, right=right):
                a, b = self.expr(left, env, loc, path), self.expr(right, env, loc, path)
                if a is None or b is None:
                    return None
                t = self.binop_type(op, a.type, b.type)
                if t is None:
                    self.error("type-mismatch", f"`{op}` cannot combine {a.type} and {b.type}", loc, node.op_start, node.op_end,
                               self.binop_hints(op, a.type, b.type), path)
                    return None
                return ir.BinOp(op, a, b, t)
        self.error("syntax-error", "unsupported expression", loc, getattr(node, "start", 0), getattr(node, "end", 1), path=path)
        return None

    def literal_in_range(self, v, node, loc: Locator, path: str) -> bool:
        """Numbers must fit the columns they meet: int64, and finite floats (``1e309`` is not one)."""
        if isinstance(v, bool):
            return True
        if isinstance(v, int) and not _INT64[0] <= v <= _INT64[1]:
            self.error("out-of-range", f"integer literal out of range for int64 ({len(str(abs(v)))} digits)", loc, node.start, node.end,
                       ["integers are 64-bit: from -9223372036854775808 to 9223372036854775807; write a float such as 1e40 for larger values"], path)
            return False
        if isinstance(v, float) and v - v != 0.0:
            self.error("out-of-range", "number literal too large for a 64-bit float", loc, node.start, node.end,
                       ["the largest float is about 1.8e308"], path)
            return False
        return True

    def literals_in_range(self, node, loc: Locator, path: str) -> bool:
        match node:
            case ALit(value=v):
                return self.literal_in_range(v, node, loc, path)
            case AUn(op="-", operand=ALit(value=v)) if isinstance(v, int | float) and not isinstance(v, bool):
                return self.literal_in_range(-v, node, loc, path)
            case AList(items=items):
                return all([self.literals_in_range(i, loc, path) for i in items])
        return True

    @staticmethod
    def binop_type(op: str, a: Type, b: Type) -> Type | None:
        anyish = "any" in (a.name, b.name)
        num = (a.is_numeric or a.name == "any") and (b.is_numeric or b.name == "any")
        if op in ("and", "or"):
            return BOOL if assignable(a, BOOL) and assignable(b, BOOL) else None
        if op in ("==", "!="):
            ok = anyish or num or a == b or (a.name == b.name == "list")
            return BOOL if ok else None
        if op in ("<", "<=", ">", ">="):
            return BOOL if num or (a.name == b.name == "str") or (anyish and "bool" not in (a.name, b.name)) else None
        if op == "+":
            if a.name == b.name == "str" or (anyish and "str" in (a.name, b.name)):
                return STR
            if num:
                return INT if a.name == b.name == "int" else FLOAT
            return None
        if op in ("-", "*"):
            return (INT if a.name == b.name == "int" else FLOAT) if num else None
        if op == "/":
            return FLOAT if num else None
        return None

    @staticmethod
    def binop_hints(op: str, a: Type, b: Type) -> list[str]:
        if op == "+" and "str" in (a.name, b.name):
            return ["`+` joins two strings or adds two numbers; convert with a signal such as `chars(...)`"]
        if op in ("and", "or"):
            return ["`and`/`or` combine conditions, e.g. `words(output) >= 5 and chars(output) < 20000`"]
        return []

    def literal_params(self, kwargs: tuple[AKwarg, ...], loc: Locator, path: str) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        ok = True
        for kw in kwargs:
            if kw.name in out:
                self.error("duplicate-parameter", f"parameter `{kw.name}` is given twice", loc, kw.start, kw.end, path=path)
                ok = False
                continue
            if not self.literals_in_range(kw.value, loc, path):
                ok = False
                continue
            value = self.literal_value(kw.value)
            if value is _NOT_LITERAL:
                self.error("non-literal-parameter", f"parameter `{kw.name}` must be a literal value", loc, kw.value.start, kw.value.end,
                           ["parameters are fixed per step; columns and signals go in positional arguments"], path)
                ok = False
                continue
            out[kw.name] = value
        return out if ok else None

    def literal_value(self, node):
        match node:
            case ALit(value=v):
                return v
            case AUn(op="-", operand=ALit(value=v)) if isinstance(v, int | float) and not isinstance(v, bool):
                return -v
            case AList(items=items):
                vals = [self.literal_value(i) for i in items]
                return _NOT_LITERAL if any(v is _NOT_LITERAL for v in vals) else vals
        return _NOT_LITERAL

    def validate_params(self, op, kwargs: dict[str, Any], node: ACall, loc: Locator, path: str):
        params, errors = op.validate(kwargs)
        if not errors:
            return params
        fields = list(op.wants)
        spans = {kw.name: (kw.start, kw.end) for kw in node.kwargs}
        for err in errors:
            name = str(err["loc"][0]) if err["loc"] else None
            start, end = spans.get(name, (node.start, node.name_end or node.end))
            kind, msg = err["type"], err["msg"]
            if kind == "extra_forbidden":
                close = difflib.get_close_matches(name or "", fields, n=2)
                hints = _did_you_mean(close)
                hints.append(f"`{op.name}` takes: " + (", ".join(fields) or "no parameters"))
                self.error("unknown-parameter", f"`{op.name}` has no parameter `{name}`", loc, start, end, hints, path)
                if name in spans:
                    self.fix_last(name, fields, close, loc, start, start + len(name))
            elif kind == "missing":
                self.error("missing-parameter", f"`{op.name}` needs parameter `{name}`", loc, node.start, node.end,
                           [f"signature: {op.signature}"], path)
            elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short", "too_long"):
                self.error("out-of-range", f"`{name}` {msg.lower()}, got {err.get('input')!r}", loc, start, end,
                           [f"signature: {op.signature}"], path)
            elif kind == "value_error":
                text = msg.removeprefix("Value error, ")
                code = "contradictory-bounds" if "contradict" in text or " > " in text else "invalid-parameter"
                start, end = spans.get(name, (node.start, node.end))  # a field's validator: at that parameter
                self.error(code, text[0].lower() + text[1:] if text else text, loc, start, end, [f"signature: {op.signature}"], path)
            elif kind in ("literal_error", "enum"):
                self.error("invalid-parameter", f"`{name}`: {msg[0].lower() + msg[1:]}", loc, start, end, path=path)
            else:
                want = op.wants.get(name, "another type") if name else "another type"
                self.error("invalid-parameter-type", f"`{name}` must be {want}, got {type(err.get('input')).__name__} {err.get('input')!r}",
                           loc, start, end, [f"signature: {op.signature}"], path)
        return None

    def call_args(self, op, node: ACall, env, loc, path, targets: bool) -> list[ir.Expr] | None:
        """Check positional arguments against the operator's signature."""
        specs = list(op.args)
        n = len(node.args)
        variadic = bool(specs) and specs[-1].variadic
        required = len(specs)
        ok = True
        if n < required:
            missing = specs[n].name
            self.error("missing-argument", f"`{op.name}` needs argument `{missing}`", loc, node.start, node.end,
                       [f"signature: {op.signature}"], path)
            ok = False
        if n > len(specs) and not variadic:
            extra = node.args[len(specs)]
            self.error("too-many-arguments", f"`{op.name}` takes {len(specs)} positional argument{'s' * (len(specs) != 1)}, got {n}",
                       loc, extra.start, node.args[-1].end, [f"signature: {op.signature}"], path)
            ok = False
        typed: list[ir.Expr] = []
        seen_columns: set[str] = set()
        for i, a in enumerate(node.args):
            spec = specs[min(i, len(specs) - 1)] if specs else None
            if spec is None:
                break
            if spec.column and isinstance(a, ACol):
                if a.name in seen_columns:
                    self.error("duplicate-argument", f"column `{a.name}` is given to `{op.name}` twice", loc, a.start, a.end,
                               ["name each column once"], path)
                    ok = False
                    continue
                seen_columns.add(a.name)
            if spec.column and not isinstance(a, ACol):
                self.error("expected-column", f"argument `{spec.name}` of `{op.name}` must be a column name", loc, a.start, a.end,
                           [f"`{op.name}` rewrites the columns it is given, e.g. `{op.name}(output)`"], path)
                ok = False
                continue
            t = self.expr(a, env, loc, path)
            if t is None:
                ok = False
                continue
            if not assignable(t.type, spec.type):
                self.error("type-mismatch", f"argument `{spec.name}` of `{op.name}` must be {spec.type}, found {t.type}", loc, a.start, a.end,
                           [f"signature: {op.signature}"], path)
                ok = False
                continue
            typed.append(t)
        return typed if ok else None

    def lookup(self, node: ACall, loc: Locator, path: str, kinds: tuple[OpKind, ...]):
        """The operator's ``OpSpec`` (what checking needs; its class is not imported), or None."""
        spec = self.reg.spec(node.name)
        if spec is None:
            close = self.reg.suggest(node.name, kinds)
            hints = _did_you_mean(close)
            family = node.name.split(".")[0] + "."
            same = [n for n in self.reg.names() if n.startswith(family) and "." in node.name]
            if same:
                hints.append(f"operators in `{family[:-1]}`: " + ", ".join(same))
            hints.append("`autodp ops` lists every operator")
            self.error("unknown-op", f"unknown operator `{node.name}`", loc, node.start, node.name_end or node.end, hints, path)
            if node.name_end:
                pool = [n for n in self.reg.names() if (s := self.reg.spec(n)) is not None and s.kind in kinds]
                self.fix_last(node.name, pool, close, loc, node.start, node.name_end)
        return spec

    def signal_call(self, node: ACall, env, loc, path) -> ir.Expr | None:
        op = self.lookup(node, loc, path, (OpKind.SIGNAL,))
        if op is None:
            return None
        if op.kind != OpKind.SIGNAL:
            self.error("wrong-op-kind", f"`{op.name}` is a {op.kind} step, not a value", loc, node.start, node.name_end or node.end,
                       ["use it as a step of its own; expressions can call signals such as `words(...)`"], path)
            return None
        args = self.call_args(op, node, env, loc, path, targets=False)
        kwargs = self.literal_params(node.kwargs, loc, path)
        if kwargs is None:
            return None
        params = self.validate_params(op, kwargs, node, loc, path)
        if args is None or params is None:
            return None
        t = op.result_type([a.type for a in args], params)
        return ir.Call(op.name, tuple(args), tuple(kwargs.items()), t)

    # ---------------------------------------------------------------- steps
    def parse(self, raw: RawStep, fn):
        try:
            return fn(raw.text, self.max_depth)
        except SyntaxProblem as p:
            hints = []
            bad = raw.text[p.start : p.end] if p.start < len(raw.text) else ""
            message = p.message
            if bad in ("'", '"'):
                message = "unterminated string"
                hints.append("close the string with the same quote on the same line")
            elif bad in _SYNTAX_HINTS:
                hints.append(_SYNTAX_HINTS[bad])
            elif bad.strip() and bad.strip()[0] in _SYNTAX_HINTS:
                hints.append(_SYNTAX_HINTS[bad.strip()[0]])
            if p.expected:
                hints.append("expected " + ", ".join(p.expected))
            if p.code == "limit-exceeded":
                hints = ["split it into steps: define a column (`part = ...`), then use it"]
            self.error(p.code, message, raw.loc, p.start, p.end, hints, raw.path)
            keywords = [k for k in ("and", "or") if k in p.expected]
            if p.code == "syntax-error" and keywords and bad.isidentifier():  # a misspelt `and` / `or` between two conditions
                self.fix_last(bad, keywords, [], raw.loc, p.start, p.end)
            return None

    def predicate(self, raw: RawStep, env) -> ir.Expr | None:
        node = self.parse(raw, parse_expr)
        if node is None:
            return None
        e = self.expr(node, env, raw.loc, raw.path)
        if e is None:
            return None
        if not assignable(e.type, BOOL):
            self.error("type-mismatch", f"`{raw.kind}:` needs a condition (bool), found {e.type}", raw.loc, node.start, node.end,
                       ["compare a value, e.g. `words(output) >= 5`"], raw.path)
            return None
        if not any(isinstance(x, ir.Col) for x in ir.walk_exprs(e)):
            self.error("constant-predicate", f"this `{raw.kind}:` does not depend on the row: it keeps {'all' if raw.kind == 'filter' else 'selects all'} or no rows",
                       raw.loc, node.start, node.end, path=raw.path, severity=Severity.WARNING)
        return e

    def steps(self, raws: list[RawStep], env: dict[str, Type], in_where: bool) -> list[ir.Step] | None:
        out: list[ir.Step] = []
        ok = True
        prev_text = None
        for raw in raws:
            if self.trace is not None:
                self.trace(raw, env, False)
            step = self.step(raw, env, in_where)
            if self.trace is not None:
                self.trace(raw, env, True)
            if step is None:
                ok = False
                prev_text = None
                continue
            text = ir.step_text(step)
            if text == prev_text and not isinstance(step, ir.Where):
                self.error("duplicate-step", "this step repeats the one before it", raw.loc, 0, len(raw.text), path=raw.path,
                           severity=Severity.WARNING)
            prev_text = text
            out.append(step)
        return out if ok else None

    def step(self, raw: RawStep, env: dict[str, Type], in_where: bool) -> ir.Step | None:
        if raw.kind == "filter":
            p = self.predicate(raw, env)
            return ir.Filter(p) if p is not None else None
        if raw.kind == "where":
            p = self.predicate(raw, env)
            inner_env = dict(env)
            body = self.steps(raw.children, inner_env, True)
            for name, t in inner_env.items():  # columns a block defines exist for all rows (null elsewhere)
                env.setdefault(name, t)
            if p is None or body is None:
                return None
            return ir.Where(p, tuple(body))
        node = self.parse(raw, parse_step)
        if node is None:
            return None
        if isinstance(node, AAssign):
            if node.name.startswith("__"):
                self.error("reserved-name", f"column names starting with `__` are reserved, got `{node.name}`", raw.loc, node.start, node.name_end, path=raw.path)
                return None
            value = self.expr(node.value, env, raw.loc, raw.path)
            if value is None:
                return None
            self.look_alike(node.name, env, raw.loc, node.start, node.name_end, raw.path)
            env[node.name] = value.type
            self.written[node.name] = (raw.loc, node.start, node.end, raw.path)
            return ir.Assign(node.name, value)
        return self.op_step(node, raw, env, in_where)

    def op_step(self, node: ACall, raw: RawStep, env, in_where: bool) -> ir.Step | None:
        loc, path = raw.loc, raw.path
        op = self.lookup(node, loc, path, (OpKind.MAP, OpKind.FILTER, OpKind.GLOBAL, OpKind.GENERATE))
        if op is None:
            return None
        if op.kind == OpKind.SIGNAL:
            arg = raw.text[node.start : node.end]
            self.error("wrong-op-kind", f"`{op.name}` is a signal (a value per row), not a step", loc, node.start, node.name_end or node.end,
                       [f"use it in a condition, e.g. `filter: {arg} > 0`, or define a column: `x = {arg}`"], path)
            return None
        if op.kind == OpKind.GLOBAL and in_where:
            self.error("global-in-where", f"`{op.name}` needs all rows and cannot run inside a `where:` block", loc, node.start, node.name_end or node.end,
                       ["move it before or after the block"], path)
            return None
        args = self.call_args(op, node, env, loc, path, targets=True)
        kwargs = self.literal_params(node.kwargs, loc, path)
        params = self.validate_params(op, kwargs, node, loc, path) if kwargs is not None else None
        if args is None or params is None:
            return None
        cols = [a.name for a in args if isinstance(a, ir.Col)]
        for c in op.removed_columns(cols, params):
            env.pop(c, None)
            self.written[c] = (loc, node.start, node.end, path)
        return ir.OpStep(op.name, tuple(args), tuple(kwargs.items()))


_NOT_LITERAL = object()
_INT64 = (-(1 << 63), (1 << 63) - 1)



def _where_written(c: _Checker, name: str, fallback: Locator) -> tuple:
    """(loc, start, end) of the step that last wrote ``name``, else the `require:` field."""
    loc, start, end, _ = c.written.get(name, (fallback, 0, 1, None))
    return loc, start, end


_TYPE_NAMES = ("str", "int", "float", "bool", "list", "list[str]", "list[int]", "list[float]", "list[bool]")


def _type_fixes(doc: RawDocument, name: str, written: str) -> list:
    """A fix for a misspelt type in `columns:`, at the type as written (a plain one-line scalar)."""
    node = doc.fields.get("__node_columns")
    for k, v in getattr(node, "value", None) or []:
        if str(getattr(k, "value", "")) == name and not getattr(v, "style", "x") and v.start_mark.line == v.end_mark.line:
            m = v.start_mark
            return name_fixes(written, _TYPE_NAMES, [], m.line + 1, m.column + 1, v.end_mark.column + 1)
    return []


def _locate_field(doc: RawDocument, key: str) -> Locator:
    return doc.field_locs.get(key, Locator(1, 1))


def check_document(doc: RawDocument, registry: Registry, columns: dict[str, Type] | None, file: str | None,
                   diags: list[Diagnostic], default_name: str = "strategy", trace=None) -> ir.Strategy | None:
    """Type-check a loaded document; ``columns`` (from the data) wins over declared columns.
    ``trace(raw_step, columns, done)`` sees the columns that exist before (``done`` False) and after
    each step: the language server's scopes."""
    c = _Checker(registry, file, doc.limits.expr_depth)
    c.trace = trace
    declared: dict[str, Type] = {}
    for name, t in (doc.fields.get("columns") or {}).items():
        try:
            declared[str(name)] = parse_type(str(t))
        except ValueError as e:
            loc = _locate_field(doc, "columns")
            c.diags.append(Diagnostic("unknown-type", str(e), loc.line, loc.col, None, Severity.ERROR,
                                      ["types: str, int, float, bool, list[str], list[int], list[float]"], None, file))
            c.diags[-1].fixes = _type_fixes(doc, str(name), str(t))
    env: dict[str, Type] = dict(columns) if columns is not None else dict(declared or DEFAULT_COLUMNS)
    initial = dict(env)
    c.non_ascii = not all(n.isascii() for n in (*env, *declared))
    cols_loc = _locate_field(doc, "columns")
    for i, name in enumerate(declared):  # a declared name that only looks like a column of the data or of `columns:`
        others = {n: t for n, t in (list(initial.items()) if columns is not None else list(declared.items())[:i]) if n != name}
        if name not in initial or columns is None:
            c.look_alike(name, others, cols_loc, 0, 0, None)
    body = c.steps(doc.steps, env, in_where=False)
    if doc.fields.get("__n_steps") == 0 and "steps" in doc.field_locs:
        loc = _locate_field(doc, "steps")
        c.diags.append(Diagnostic("empty-strategy", "the strategy has no steps", loc.line, loc.col, None, Severity.WARNING, [], None, file))
    require = tuple(doc.fields.get("require") or [n for n in DEFAULT_REQUIRED if n in initial])
    loc = _locate_field(doc, "require") if "require" in doc.fields else Locator(1, 1)
    for name in require:
        if name not in initial:
            real = [n for n in initial if skeleton(n) == skeleton(name)]
            hints = [f"`{name}` looks like `{real[0]}` but is another name ({_odd_chars(name if not name.isascii() else real[0])})"] if real else []
            c.diags.append(Diagnostic("unknown-column", f"required column `{name}` is not in the input", loc.line, loc.col, None,
                                      Severity.ERROR, hints + ["available columns: " + ", ".join(initial)], None, file))
        elif body is not None and name not in env:
            c.error("lost-required-column", f"the output loses required column `{name}`", *_where_written(c, name, loc),
                    ["remove the step that drops it, or take it out of `require:`"])
        elif body is not None and env[name] != initial[name] and "any" not in (env[name].name, initial[name].name):
            c.error("lost-required-column", f"required column `{name}` changes type from {initial[name]} to {env[name]}",
                    *_where_written(c, name, loc), ["assign the new value to a new column instead"])
    diags.extend(c.diags)
    if body is None or any(d.severity == Severity.ERROR for d in diags):
        return None
    return ir.Strategy(
        name=str(doc.fields.get("name") or default_name),
        description=str(doc.fields.get("description") or ""),
        columns=tuple(declared.items()),
        require=require,
        steps=tuple(body),
        dp=1,  # the only version; load_document reported any other
    )
