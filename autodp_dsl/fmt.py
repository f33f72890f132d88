"""One canonical text for a .dp document, that loses nothing.

``format_source`` formats a file from its syntax tree (it needs no data and no operator catalog, so
it works on strategies that do not type-check yet); ``strategy_to_text`` writes a typed strategy
(what agents and the proposer produce) in the same layout. Both are idempotent, and parsing the
output gives the same IR as the input.

Lossless means: every key and value of the file is in the output, read back equal. Keys .dp does
not define (a misspelled ``stesp:``) are kept, after the known ones; literals keep their exact
value (a number too large for a float keeps its spelling); parentheses are written wherever
precedence or a non-associative comparison needs them; strings that YAML would fold or reject
are written as escaped double-quoted scalars. What it cannot keep, it refuses to format, with a
diagnostic: a file with comments (``formatting-refused``), duplicate keys, anything that does not
parse.
"""

from __future__ import annotations

import bisect
import math

import yaml

from . import ir
from .diagnostics import Diagnostic, Severity
from .document import DEFAULT_LIMITS, TOP_LEVEL_KEYS, Limits, RawStep, load_document
from .syntax import AAssign, ABin, ACall, ACol, AList, ALit, AUn, SyntaxProblem, parse_expr, parse_step

__all__ = ["format_source", "strategy_to_text", "ast_text"]

_PREC = ir._PREC
# a refusal to format, rather than a silent loss
_REFUSE = ("yaml-syntax", "invalid-document", "invalid-step", "duplicate-key", "limit-exceeded", "formatting-refused")


def ast_text(node, parent_prec: int = 0, source: str = "") -> str:
    """The canonical spelling of a syntax tree. ``source`` is the text it was parsed from: a float
    literal whose value cannot be spelled exactly (``1e309``, which reads as infinity) keeps it."""
    match node:
        case ACol(name=name):
            return ir.col_text(name)
        case ALit(value=v):
            if isinstance(v, float) and not math.isfinite(v) and source:
                return source[node.start : node.end]
            return ir._lit_text(v)
        case AList(items=items):
            return "[" + ", ".join(ast_text(i, 0, source) for i in items) + "]"
        case ACall(name=name, args=args, kwargs=kwargs):
            parts = [ast_text(a, 0, source) for a in args] + [f"{k.name}={ast_text(k.value, 0, source)}" for k in kwargs]
            return f"{name}({', '.join(parts)})"
        case ABin(op=op, left=left, right=right):
            p = _PREC[op]
            # left-associative, except comparisons, which do not chain: `(a > 1) == (b > 2)`
            text = f"{ast_text(left, p + (p == ir.COMPARISON_PREC), source)} {op} {ast_text(right, p + 1, source)}"
            return f"({text})" if p < parent_prec else text
        case AUn(op="not", operand=operand):
            p = _PREC["not"]
            text = f"not {ast_text(operand, p, source)}"
            return f"({text})" if p < parent_prec else text
        case AUn(operand=operand):
            return ir.neg_text(ast_text(operand, ir.NEG_PREC, source))
        case AAssign(name=name, value=value):
            return f"{ir.col_text(name)} = {ast_text(value, 0, source)}"
    raise TypeError(f"not a syntax node: {node!r}")


# ---------------------------------------------------------------- YAML scalars

_PLAIN_UNSAFE_START = ("-", "?", ":", "[", "]", "{", "}", ",", "'", '"', "!", "&", "*", "#", "|", ">", "%", "@", "`")


def _yaml_printable(s: str) -> bool:
    """True when a single-quoted scalar keeps ``s`` as it is: no line break of any kind (YAML
    folds them; PyYAML counts NEL, U+2028 and U+2029 as line breaks) and no character YAML must escape."""
    return all(c == "\t" or " " <= c <= "~" or ("\xa0" <= c <= "\ufffd" and c not in "\u2028\u2029\ufeff" and not "\ud800" <= c <= "\udfff")
               or "\U00010000" <= c for c in s)


def _double_quoted(s: str) -> str:
    # PyYAML's emitter escapes every line break and non-printable character in this style
    out = yaml.emit([yaml.StreamStartEvent(), yaml.DocumentStartEvent(), yaml.ScalarEvent(None, None, (False, True), s, style='"'),
                     yaml.DocumentEndEvent(), yaml.StreamEndEvent()], allow_unicode=True, width=1 << 30)
    return out.rstrip("\n").removesuffix("\n...").rstrip("\n")


def _yaml_str(s: str) -> str:
    """``s`` as a YAML scalar that reads back as exactly ``s``: plain when that is safe, else
    single-quoted, else (line breaks, control or odd characters) double-quoted with escapes."""
    if _yaml_printable(s):
        if s and s == s.strip() and not s.startswith(_PLAIN_UNSAFE_START) and ": " not in s and " #" not in s and not s.endswith(":"):
            try:
                if yaml.safe_load(s) == s:
                    return s
            except yaml.YAMLError:
                pass
        return "'" + s.replace("'", "''") + "'"
    return _double_quoted(s)


def _description(s: str) -> str:
    """A description longer than a 120-character line as a folded block (``>-``, lines of about 100) when
    that reads back as exactly ``s``; otherwise the usual scalar."""
    if len(s) > 120 - len("description: ") and "\n" not in s and _yaml_printable(s):
        events = [yaml.StreamStartEvent(), yaml.DocumentStartEvent(), yaml.MappingStartEvent(None, None, True),
                  yaml.ScalarEvent(None, None, (True, False), "description"), yaml.ScalarEvent(None, None, (False, True), s, style=">"),
                  yaml.MappingEndEvent(), yaml.DocumentEndEvent(), yaml.StreamEndEvent()]
        text = yaml.emit(events, allow_unicode=True, width=96).rstrip("\n")
        try:
            if text.startswith("description: >") and yaml.safe_load(text) == {"description": s}:
                return text.removeprefix("description: ")
        except yaml.YAMLError:
            pass
    return _yaml_str(s)


def _yaml_value(v) -> str:
    """A YAML scalar of any type, flow style (a value .dp does not define: kept as it was read)."""
    if isinstance(v, str):
        return _yaml_str(v)
    return yaml.safe_dump(v, default_flow_style=True, allow_unicode=True, width=1 << 30).removesuffix("\n").removesuffix("\n...")


# ---------------------------------------------------------------- layout


def _render(fields: dict, steps: list[tuple] | None, extra: list[str] = ()) -> str:
    """``fields``: the known top-level keys present (a missing key stays missing); ``steps``: None
    when the file has no `steps:`; ``extra``: the YAML text of keys .dp does not define."""
    out = []
    if "dp" in fields:
        out.append(f"dp: {_yaml_value(fields['dp'])}")
    if fields.get("name") is not None:
        out.append(f"name: {_yaml_str(str(fields['name']))}")
    if fields.get("description") is not None:
        out.append(f"description: {_description(fields['description'])}")
    cols = fields.get("columns")
    if cols is not None:
        out.append("columns:" if cols else "columns: {}")
        out += [f"  {_yaml_value(k)}: {_yaml_value(v)}" for k, v in cols.items()]
    req = fields.get("require")
    if req is not None:
        out.append("require: [" + ", ".join(_yaml_str(str(r)) for r in req) + "]")

    def emit(items, indent):
        pad = " " * indent
        for item in items:
            if item[0] == "call":
                out.append(f"{pad}- {_yaml_str(item[1])}")
            elif item[0] == "filter":
                out.append(f"{pad}- filter: {_yaml_str(item[1])}")
            else:
                out.append(f"{pad}- where: {_yaml_str(item[1])}")
                out.append(f"{pad}  do:" if item[2] else f"{pad}  do: []")
                emit(item[2], indent + 4)

    if steps is not None:
        out.append("steps:" if steps else "steps: []")
        emit(steps, 2)
    out += extra
    return "\n".join(out) + "\n"


def _raw_items(raws: list[RawStep], diags: list[Diagnostic], limits: Limits) -> list[tuple] | None:
    items = []
    for raw in raws:
        try:
            node = parse_step(raw.text, limits.expr_depth) if raw.kind == "call" else parse_expr(raw.text, limits.expr_depth)
        except SyntaxProblem as p:
            line, col = raw.loc.at(p.start)
            diags.append(Diagnostic(p.code, p.message, line, col, None, hints=["expected " + ", ".join(p.expected)] if p.expected else []))
            return None
        text = ast_text(node, 0, raw.text)
        if raw.kind == "where":
            children = _raw_items(raw.children, diags, limits)
            if children is None:
                return None
            items.append(("where", text, children))
        else:
            items.append((raw.kind, text))
    return items


def _comments(source: str) -> list[tuple[int, int]]:
    """(line, column) of every comment: a `#` outside every YAML token (a `#` inside a quoted or
    plain scalar belongs to the token)."""
    if "#" not in source:
        return []
    spans = [(t.start_mark.index, t.end_mark.index) for t in yaml.scan(source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))]
    starts = [s for s, _ in spans]
    found = []
    i = source.find("#")
    while i != -1:
        k = bisect.bisect_right(starts, i) - 1
        if k < 0 or not spans[k][0] <= i < spans[k][1]:
            line = source.count("\n", 0, i) + 1
            found.append((line, i - source.rfind("\n", 0, i)))
            i = source.find("\n", i)  # the rest of the line is the comment
            if i == -1:
                break
        i = source.find("#", i + 1)
    return found


def _unknown_keys(root: yaml.MappingNode) -> list[str]:
    """The YAML text of each top-level key .dp does not define, as it was read (styles kept)."""
    out = []
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value in TOP_LEVEL_KEYS:
            continue
        node = yaml.MappingNode("tag:yaml.org,2002:map", [(k, v)], flow_style=False)
        text = yaml.serialize(node, Dumper=yaml.SafeDumper, allow_unicode=True, width=1 << 30, explicit_start=False)
        out.append(text.rstrip("\n").removesuffix("\n...").rstrip("\n"))
    return out


def format_source(source: str, limits: Limits = DEFAULT_LIMITS) -> tuple[str | None, list[Diagnostic]]:
    """Canonical text of a .dp source, or None and the problems that prevent formatting it
    without losing anything."""
    diags: list[Diagnostic] = []
    doc = load_document(source, diags, limits)
    if doc is None or any(d.code in _REFUSE for d in diags):
        return None, [d for d in diags if d.severity == Severity.ERROR]
    comments = _comments(source)
    if comments:
        line, col = comments[0]
        return None, [Diagnostic("formatting-refused", f"the file has {len(comments)} comment{'s' * (len(comments) != 1)}, "
                                 "which the canonical layout does not keep", line, col, None, Severity.ERROR,
                                 ["move what they say into `description:`, or keep the file as it is"])]
    items = _raw_items(doc.steps, diags, limits)
    if items is None:
        return None, diags
    fields = {k: v for k, v in doc.fields.items() if not k.startswith("__")}
    steps = items if "steps" in doc.field_locs else None
    return _render(fields, steps, _unknown_keys(doc.root)), []


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
    fields = {"dp": s.dp, "name": s.name, "description": s.description or None, "columns": {n: str(t) for n, t in s.columns} or None,
              "require": list(s.require) or None}
    return _render(fields, _ir_items(s.steps))
