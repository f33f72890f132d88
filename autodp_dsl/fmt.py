"""One canonical text for a .dp document.

``format_source`` formats a file from its syntax tree (it needs no data and no operator catalog, so
it works on strategies that do not type-check yet); ``strategy_to_text`` writes a typed strategy
(what agents and the proposer produce) in the same layout. Both are idempotent, and parsing the
output gives the same IR as the input. Comments are not kept: the canonical text is the document.
"""

from __future__ import annotations

import json

import yaml

from . import ir
from .diagnostics import Diagnostic
from .document import RawStep, load_document
from .syntax import AAssign, ABin, ACall, ACol, AList, ALit, AUn, SyntaxProblem, parse_expr, parse_step

__all__ = ["format_source", "strategy_to_text", "ast_text"]

_PREC = ir._PREC


def ast_text(node, parent_prec: int = 0) -> str:
    match node:
        case ACol(name=name):
            return ir.col_text(name)
        case ALit(value=v):
            return ir._lit_text(v)
        case AList(items=items):
            return "[" + ", ".join(ast_text(i) for i in items) + "]"
        case ACall(name=name, args=args, kwargs=kwargs):
            parts = [ast_text(a) for a in args] + [f"{k.name}={ast_text(k.value)}" for k in kwargs]
            return f"{name}({', '.join(parts)})"
        case ABin(op=op, left=left, right=right):
            p = _PREC[op]
            text = f"{ast_text(left, p)} {op} {ast_text(right, p + 1)}"
            return f"({text})" if p < parent_prec else text
        case AUn(op=op, operand=operand):
            p = _PREC["not"] if op == "not" else 7
            text = f"not {ast_text(operand, p)}" if op == "not" else f"-{ast_text(operand, p)}"
            return f"({text})" if p < parent_prec else text
        case AAssign(name=name, value=value):
            return f"{ir.col_text(name)} = {ast_text(value)}"
    raise TypeError(f"not a syntax node: {node!r}")


def _yaml_str(s: str) -> str:
    """``s`` as a YAML scalar: plain when that reads back the same, else single-quoted."""
    if s and s == s.strip() and "\n" not in s and not s.startswith(("-", "?", ":", "[", "{", "'", '"', "!", "&", "*", "#", "|", ">", "%", "@", "`")):
        try:
            if yaml.safe_load(s) == s:
                return s
        except yaml.YAMLError:
            pass
    return "'" + s.replace("'", "''") + "'"


def _render(fields: dict, steps: list[tuple]) -> str:
    out = [f"dp: {fields.get('dp', 1)}"]
    if fields.get("name") is not None:
        out.append(f"name: {_yaml_str(str(fields['name']))}")
    desc = fields.get("description")
    if desc:
        out.append(f"description: {_yaml_str(desc) if chr(10) not in desc.strip() else json.dumps(desc, ensure_ascii=False)}")
    cols = fields.get("columns")
    if cols:
        out.append("columns:")
        out += [f"  {_yaml_str(str(k))}: {v}" for k, v in cols.items()]
    req = fields.get("require")
    if req:
        out.append("require: [" + ", ".join(_yaml_str(str(r)) for r in req) + "]")
    out.append("steps:" if steps else "steps: []")

    def emit(items, indent):
        pad = " " * indent
        for item in items:
            if item[0] == "call":
                out.append(f"{pad}- {_yaml_str(item[1])}")
            elif item[0] == "filter":
                out.append(f"{pad}- filter: {_yaml_str(item[1])}")
            else:
                out.append(f"{pad}- where: {_yaml_str(item[1])}")
                out.append(f"{pad}  do:")
                emit(item[2], indent + 4)

    emit(steps, 2)
    return "\n".join(out) + "\n"


def _raw_items(raws: list[RawStep], diags: list[Diagnostic]) -> list[tuple] | None:
    items = []
    for raw in raws:
        try:
            node = parse_step(raw.text) if raw.kind == "call" else parse_expr(raw.text)
        except SyntaxProblem as p:
            line, col = raw.loc.at(p.start)
            diags.append(Diagnostic("syntax-error", p.message, line, col, None, hints=["expected " + ", ".join(p.expected)] if p.expected else []))
            return None
        text = ast_text(node)
        if raw.kind == "where":
            children = _raw_items(raw.children, diags)
            if children is None:
                return None
            items.append(("where", text, children))
        else:
            items.append((raw.kind, text))
    return items


def format_source(source: str) -> tuple[str | None, list[Diagnostic]]:
    """Canonical text of a .dp source, or None and the syntax problems that prevent it."""
    diags: list[Diagnostic] = []
    doc = load_document(source, diags)
    if doc is None or any(d.code in ("yaml-syntax", "invalid-document", "invalid-step") for d in diags):
        return None, diags
    items = _raw_items(doc.steps, diags)
    if items is None:
        return None, diags
    fields = {k: v for k, v in doc.fields.items() if not k.startswith("__")}
    return _render(fields, items), []


def _ir_items(steps) -> list[tuple]:
    items = []
    for s in steps:
        if isinstance(s, ir.Where):
            items.append(("where", ir.expr_text(s.predicate), _ir_items(s.steps)))
        elif isinstance(s, ir.Filter):
            items.append(("filter", ir.expr_text(s.predicate)))
        else:
            items.append(("call", ir.step_text(s)))
    return items


def strategy_to_text(s: ir.Strategy) -> str:
    """The .dp text of a strategy (canonical layout)."""
    fields = {"dp": s.dp, "name": s.name, "description": s.description, "columns": {n: str(t) for n, t in s.columns},
              "require": list(s.require)}
    return _render(fields, _ir_items(s.steps))
