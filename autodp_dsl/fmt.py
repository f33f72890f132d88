"""One canonical text for a .dp document, that loses nothing.

``format_source`` formats a file from its syntax tree (it needs no data and no operator catalog, so
it works on strategies that do not type-check yet); ``strategy_to_text`` writes a typed strategy
(what agents and the proposer produce) in the same layout. Both are idempotent, and parsing the
output gives the same IR as the input.

Lossless means: every key and value of the file is in the output, read back equal. Keys .dp does
not define (a misspelled ``stesp:``) are kept, after the known ones; literals keep their exact
value (a number too large for a float keeps its spelling); parentheses are written wherever
precedence or a non-associative comparison needs them; strings that YAML would fold or reject
are written as escaped double-quoted scalars; comments stay next to the key or step they were
next to. What it cannot keep (duplicate keys, anything that does not parse, a document over the
bounds), it refuses to format, with a diagnostic.
"""

from __future__ import annotations

import bisect
import math

import yaml

from . import ir
from .diagnostics import Diagnostic, Severity
from .document import DEFAULT_LIMITS, LINE_BREAK, TOP_LEVEL_KEYS, Limits, RawStep, load_document
from .syntax import AAssign, ABin, ACall, ACol, AList, ALit, AUn, SyntaxProblem, parse_expr, parse_step

__all__ = ["format_source", "strategy_to_text", "ast_text"]

# a refusal to format, rather than a silent loss
_REFUSE = ("yaml-syntax", "invalid-document", "invalid-step", "duplicate-key", "limit-exceeded")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def ast_text(node, parent_prec: int = 0, source: str = "") -> str:
    """The canonical spelling of a syntax tree. ``source`` is the text it was parsed from: a float
    literal whose value cannot be spelled exactly (``1e309``, which reads as infinity) keeps it."""
    match node:
        case ACol(name=name):
            return ir.col_text(name)
        case ALit(value=v):
            if isinstance(v, float) and not math.isfinite(v) and source:
                return source[node.start : node.end]
            return ir.lit_text(v)
        case AList(items=items):
            return "[" + ", ".join(ast_text(i, 0, source) for i in items) + "]"
        case ACall(name=name, args=args, kwargs=kwargs):
            parts = [ast_text(a, 0, source) for a in args] + [f"{k.name}={ast_text(k.value, 0, source)}" for k in kwargs]
            return f"{name}({', '.join(parts)})"
        case ABin(op=op, left=left, right=right):
            return ir.operator_text(op, (left, right), parent_prec, lambda n, p: ast_text(n, p, source))
        case AUn(op=op, operand=operand):
            return ir.operator_text(op, (operand,), parent_prec, lambda n, p: ast_text(n, p, source))
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


def _yaml_str(s: str, flow: bool = False) -> str:
    """``s`` as a YAML scalar that reads back as exactly ``s``: plain when that is safe, else
    single-quoted, else (line breaks, control or odd characters) double-quoted with escapes.
    ``flow``: an item of a ``[...]`` list, where more characters end a plain scalar."""
    if _yaml_printable(s):
        if s and s == s.strip() and not s.startswith(_PLAIN_UNSAFE_START) and ": " not in s and " #" not in s and not s.endswith(":"):
            try:  # plain only where it reads back as itself, in the context it is written in
                if (yaml.safe_load(f"[{s}]") == [s]) if flow else (yaml.safe_load(s) == s):
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


def _render(fields: dict, steps: list[tuple] | None, extra: list[tuple[str, int | None]] = (), lines: dict | None = None) -> list[tuple[str, int | None]]:
    """The canonical lines, each with the file line it comes from (None: made here), so that
    comments can be put back next to what they were next to. ``fields``: the known top-level keys
    present (a missing key stays missing); ``steps``: None when the file has no `steps:`;
    ``extra``: the YAML text of keys .dp does not define; ``lines``: key -> file line."""
    at = (lines or {}).get
    out: list[tuple[str, int | None]] = []
    if "dp" in fields:
        out.append((f"dp: {_yaml_value(fields['dp'])}", at("dp")))
    if fields.get("name") is not None:
        out.append((f"name: {_yaml_str(str(fields['name']))}", at("name")))
    if fields.get("description") is not None:
        out.append((f"description: {_description(fields['description'])}", at("description")))
    cols = fields.get("columns")
    if cols is not None:
        out.append(("columns:" if cols else "columns: {}", at("columns")))
        col_lines = at("columns.entries") or [None] * len(cols)
        out += [(f"  {_yaml_value(k)}: {_yaml_value(v)}", line) for (k, v), line in zip(cols.items(), col_lines, strict=True)]
    req = fields.get("require")
    if req is not None:
        out.append(("require: [" + ", ".join(_yaml_str(str(r), flow=True) for r in req) + "]", at("require")))

    def emit(items, indent):
        pad = " " * indent
        for kind, text, line, *block in items:
            if kind == "call":
                out.append((f"{pad}- {_yaml_str(text)}", line))
            elif kind == "filter":
                out.append((f"{pad}- filter: {_yaml_str(text)}", line))
            else:
                children, do_line = block
                out.append((f"{pad}- where: {_yaml_str(text)}", line))
                out.append((f"{pad}  do:" if children else f"{pad}  do: []", do_line))
                emit(children, indent + 4)

    if steps is not None:
        out.append(("steps:" if steps else "steps: []", at("steps")))
        emit(steps, 2)
    out += extra
    return out


def _text(lines: list[tuple[str, int | None]]) -> str:
    return "\n".join(t for t, _ in lines) + "\n"


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
            items.append(("where", text, raw.line or None, children, raw.do_line or None))
        else:
            items.append((raw.kind, text, raw.line or None))
    return items


# ---------------------------------------------------------------- comments


def comments(source: str) -> list[tuple[int, bool, str]]:
    """(line, trailing, text) of every comment: a `#` outside every YAML token (a `#` inside a
    quoted or plain scalar belongs to the token), to the end of its line. ``trailing``: something
    precedes it on its line."""
    if "#" not in source:
        return []
    spans = [(t.start_mark.index, t.end_mark.index) for t in yaml.scan(source, Loader=_LOADER)]
    starts = [a for a, _ in spans]
    breaks = [m.start() for m in LINE_BREAK.finditer(source)]
    found = []
    i = source.find("#")
    while i != -1:
        k = bisect.bisect_right(starts, i) - 1
        if k >= 0 and spans[k][0] <= i < spans[k][1]:
            i = source.find("#", i + 1)
            continue
        n = bisect.bisect_left(breaks, i)  # breaks before the `#`
        line_start = breaks[n - 1] + 1 if n else 0
        if n and source[breaks[n - 1]] == "\r" and source.startswith("\r\n", breaks[n - 1]):
            line_start += 1
        end = breaks[n] if n < len(breaks) else len(source)
        found.append((n + 1, bool(source[line_start:i].strip()), source[i:end].rstrip()))
        i = source.find("#", end)
    return found


def _with_comments(out: list[tuple[str, int | None]], found: list[tuple[int, bool, str]],
                   extents: list[tuple[int, int, int]] = ()) -> list[tuple[str, int | None]]:
    """Put every comment back: a trailing one at the end of the line that now holds what its line
    held, any other one before the next thing that followed it in the file (at its indentation),
    the ones after everything at the end; one inside a kept unknown key (``extents``: its first and
    last file line, its index in ``out``) before that key. Comments may move; none is lost."""
    if not found:
        return out
    anchors = sorted((line, i) for i, (_, line) in enumerate(out) if line)
    anchor_lines = [line for line, _ in anchors]
    before: dict[int, list[str]] = {}
    after: dict[int, str] = {}
    tail: list[str] = []
    for line, trailing, text in found:
        inside = next((i for first, last, i in extents if first <= line <= last), None)
        if inside is not None:
            before.setdefault(inside, []).append(text)
            continue
        k = bisect.bisect_left(anchor_lines, line)
        if trailing and k < len(anchors) and anchors[k][0] == line and "\n" not in out[anchors[k][1]][0] and anchors[k][1] not in after:
            after[anchors[k][1]] = text
        elif k < len(anchors):
            before.setdefault(anchors[k][1], []).append(text)
        else:
            tail.append(text)
    result: list[tuple[str, int | None]] = []
    for i, (text, line) in enumerate(out):
        indent = " " * (len(text) - len(text.lstrip(" ")))
        result += [(indent + c, None) for c in before.get(i, ())]
        result.append((f"{text}  {after[i]}" if i in after else text, line))
    return result + [(c, None) for c in tail]


# ---------------------------------------------------------------- the document


def _last_line(node: yaml.Node) -> int:
    """The file line of a value's last character. A block collection's end mark is the next token
    (after any comments that follow it), so its last line is that of its last scalar or flow part."""
    last, stack = 0, [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.ScalarNode) or getattr(n, "flow_style", False):
            end = n.end_mark  # a block scalar's ends at column 0 of the line after it
            last = max(last, end.line + (1 if end.column else 0))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        else:
            stack.extend(x for pair in n.value for x in pair)
    return last


def _unknown_keys(root: yaml.MappingNode) -> list[tuple[str, int, int]]:
    """The YAML text of each top-level key .dp does not define, as it was read (styles kept), with
    its first and last line in the file."""
    out = []
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value in TOP_LEVEL_KEYS:
            continue
        node = yaml.MappingNode("tag:yaml.org,2002:map", [(k, v)], flow_style=False)
        text = yaml.serialize(node, Dumper=yaml.SafeDumper, allow_unicode=True, width=1 << 30, explicit_start=False)
        last = _last_line(v)
        out.append((text.rstrip("\n").removesuffix("\n...").rstrip("\n"), k.start_mark.line + 1, last))
    return out


def _key_lines(root: yaml.MappingNode, fields: dict) -> dict:
    lines: dict = {}
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value in TOP_LEVEL_KEYS:
            lines[k.value] = k.start_mark.line + 1
            if k.value == "columns" and isinstance(v, yaml.MappingNode) and len(v.value) == len(fields.get("columns") or ()):
                lines["columns.entries"] = [ck.start_mark.line + 1 for ck, _ in v.value]
    return lines


def format_source(source: str, limits: Limits = DEFAULT_LIMITS) -> tuple[str | None, list[Diagnostic]]:
    """Canonical text of a .dp source, or None and the problems that prevent formatting it
    without losing anything."""
    diags: list[Diagnostic] = []
    doc = load_document(source, diags, limits)
    if doc is None or any(d.code in _REFUSE for d in diags):
        return None, [d for d in diags if d.severity == Severity.ERROR]
    items = _raw_items(doc.steps, diags, limits)
    if items is None:
        return None, diags
    fields = {k: v for k, v in doc.fields.items() if not k.startswith("__")}
    steps = items if "steps" in doc.field_locs else None
    extra = _unknown_keys(doc.root)
    out = _render(fields, steps, [(text, first) for text, first, _ in extra], _key_lines(doc.root, fields))
    base = len(out) - len(extra)
    extents = [(first, last, base + i) for i, (_, first, last) in enumerate(extra)]
    return _text(_with_comments(out, comments(source), extents)), []


def _ir_items(steps) -> list[tuple]:
    items = []
    for s in steps:
        if isinstance(s, ir.Where):
            items.append(("where", ir.expr_text(s.predicate), None, _ir_items(s.steps), None))
        elif isinstance(s, ir.Filter):
            items.append(("filter", ir.expr_text(s.predicate), None))
        else:
            items.append(("call", ir.step_text(s), None))
    return items


def strategy_to_text(s: ir.Strategy) -> str:
    """The .dp text of a strategy (canonical layout)."""
    fields = {"dp": s.dp, "name": s.name, "description": s.description or None, "columns": {n: str(t) for n, t in s.columns} or None,
              "require": list(s.require) or None}
    return _text(_render(fields, _ir_items(s.steps)))
