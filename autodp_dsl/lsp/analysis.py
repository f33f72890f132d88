"""What the language server knows about one .dp document, in plain data (no LSP types).

Positions here are 0-based lines and 0-based columns counted in code points (Python string
indices); the server converts them to the client's units. Everything works on text that does not
parse: completion, hover and signature help read the line around the cursor (a small scanner finds
the call the cursor is in), and the columns in scope come from the document as far as it loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from ..checker import DEFAULT_COLUMNS, check_document
from ..declarations import OpKind
from ..default_registry import registry
from ..diagnostics import Diagnostic
from ..document import DEFAULT_LIMITS, TOP_LEVEL_KEYS, RawStep, load_document
from ..ir import col_text
from ..nodes import AAssign, SyntaxProblem
from ..opregistry import Registry
from ..syntax import parse_step
from ..types import Type, parse_type

__all__ = ["MAX_BYTES", "Column", "Analysis", "CallContext", "Completion", "analyze", "diagnostics", "call_context",
           "word_at", "complete", "hover", "op_markdown", "signature_parts"]

MAX_BYTES = DEFAULT_LIMITS.document_bytes  # the language core's bound: larger documents get no analysis
MAX_LINE = 10_000  # the cursor scanner reads at most this much of a line

_SURROGATE = re.compile("[\ud800-\udfff]")  # unpaired: what a client's invalid UTF-8 can turn into
_WORD = re.compile(r"[A-Za-z_][\w.]*")
_TYPES = ("str", "int", "float", "bool", "list[str]", "list[int]", "list[float]")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: Type
    origin: str  # in words: "declared in `columns:`", "defined by step 3", ...
    line: int = -1  # where it is defined (0-based), -1 when nowhere in the file
    col: int = 0
    end_col: int = 0


@dataclass(slots=True)
class Analysis:
    """The columns in scope at each step, where each column comes from, and the steps' spans."""

    source: str
    lines: list[str]
    top: list[RawStep] = field(default_factory=list)  # the document's steps (where-blocks hold their children)
    steps: list[RawStep] = field(default_factory=list)  # every step, in order (where-blocks' children after them)
    scopes: list[tuple[int, dict[str, Type]]] = field(default_factory=list)  # (line of a step, columns before it)
    final: dict[str, Type] = field(default_factory=dict)
    origins: dict[str, Column] = field(default_factory=dict)

    def columns_at(self, line: int) -> dict[str, Type]:
        """The columns that exist at 0-based ``line``: before the step there, or after the last one above."""
        for step_line, env in self.scopes:
            if step_line >= line:
                return env
        return self.final

    def column(self, name: str, line: int) -> Column | None:
        env = self.columns_at(line)
        if name not in env and name not in self.origins:
            return None
        known = self.origins.get(name)
        t = env.get(name, known.type if known else None)
        return Column(name, t, known.origin, known.line, known.col, known.end_col) if known else Column(name, t, "an input column")


def split_lines(source: str) -> list[str]:
    """Lines as LSP counts them (``\n``, ``\r\n`` or ``\r`` end a line)."""
    return re.split(r"\r\n|\r|\n", source)


def step_body(before: str) -> str:
    """The step text of a line up to the cursor (after `- `, `filter:`/`where:` and an opening quote)."""
    where = _step_line(before)
    return where[1] if where else before


def too_large(source: str) -> bool:
    return len(source) > MAX_BYTES or len(source.encode("utf-8", "surrogatepass")) > MAX_BYTES


def not_text(source: str) -> bool:
    """Unpaired surrogates (what invalid UTF-8 from a client becomes): not text, and no reply that
    quotes it could even be encoded; only a diagnostic is sent for it."""
    return _SURROGATE.search(source) is not None


def diagnostics(source: str, path: str | None = None, columns: dict[str, Type] | None = None) -> list[Diagnostic]:
    """What `autodp lint` reports for ``source`` (the same codes, messages, positions, hints, fixes;
    the language core's bounds included: a document over 1 MiB is one `limit-exceeded`)."""
    from ..compiler import lint_text

    if not_text(source):
        m = _SURROGATE.search(source)
        line = source.count("\n", 0, m.start()) + 1
        return [Diagnostic("invalid-encoding", "the document is not UTF-8 text (the editor sent bytes that do not decode)",
                           line, m.start() - (source.rfind("\n", 0, m.start()) + 1) + 1, file=path)]
    return lint_text(source, path, columns)


def analyze(source: str, columns: dict[str, Type] | None = None, reg: Registry | None = None) -> Analysis:
    """Scopes and origins of ``source`` (as much as loads); never raises on bad input."""
    a = Analysis(source, split_lines(source))
    if too_large(source) or not_text(source):
        return a
    reg = reg or registry()
    doc = _load_tolerant(source)
    declared: dict[str, Type] = {}
    if doc is not None:
        node = doc.fields.get("__node_columns")
        for k, v in (node.value if isinstance(node, yaml.MappingNode) else []):
            try:
                t = parse_type(str(v.value))
            except (ValueError, AttributeError):
                continue
            declared[str(k.value)] = t
            m = k.start_mark
            a.origins[str(k.value)] = Column(str(k.value), t, "declared in `columns:`", m.line, m.column, m.column + len(str(k.value)))
    env: dict[str, Type] = dict(columns) if columns is not None else dict(declared or DEFAULT_COLUMNS)
    for name, t in env.items():
        if name not in a.origins:
            a.origins[name] = Column(name, t, "an input column (from the data)" if columns is not None else
                                     "an input column (the default Alpaca shape: no `columns:` declared)")
    if doc is not None:
        a.top = doc.steps
        last_top: list = [None]
        top_ids = {id(s) for s in doc.steps}

        def trace(raw: RawStep, env: dict[str, Type], done: bool) -> None:
            if not done:
                a.steps.append(raw)
                a.scopes.append((raw.loc.line - 1, dict(env)))
                return
            if id(raw) in top_ids:
                last_top[0] = dict(env)
            if raw.kind == "call":
                _origin(a, raw, env)

        try:
            check_document(doc, reg, columns, None, [], trace=trace)
        except Exception:  # a checker bug must not take the editor down; lint reports it
            pass
        if last_top[0] is not None:
            env = last_top[0]
    a.final = dict(env)
    return a


def _load_tolerant(source: str, tries: int = 4):
    """The document as far as it loads. On a YAML error the lines up to it are blanked one by one,
    from the error upwards (the line being typed is usually the culprit, e.g. an unclosed `[`);
    lines keep their numbers, so positions stay right."""
    diags: list[Diagnostic] = []
    doc = load_document(source, diags)
    lines = source.split("\n")
    blanked = None
    for _ in range(tries):
        if doc is not None or not diags or diags[0].code != "yaml-syntax":
            break
        n = (min(diags[0].line, len(lines)) if blanked is None else blanked) - 1
        if n < 0:
            break
        lines[n] = ""
        blanked = n
        diags = []
        doc = load_document("\n".join(lines), diags)
    return doc


def _origin(a: Analysis, raw: RawStep, env: dict[str, Type]) -> None:
    """Record where a ``name = expr`` step defines its column."""
    try:
        node = parse_step(raw.text)
    except (SyntaxProblem, RecursionError):
        return
    if isinstance(node, AAssign) and node.name in env:
        line, col = raw.loc.at(node.start)
        a.origins[node.name] = Column(node.name, env[node.name], f"defined by step {raw.path}: `{raw.text.strip()}`",
                                      line - 1, col - 1, col - 1 + (node.name_end - node.start))


# ---------------------------------------------------------------- the cursor's context


@dataclass(slots=True)
class CallContext:
    name: str  # the operator whose parentheses the cursor is in
    arg_index: int  # which positional/keyword slot (0-based)
    keyword: str | None  # the parameter being given (`name=` before the cursor), if any
    used: set[str]  # keyword parameters already given in this call


def _scan(text: str) -> tuple[list[list], bool]:
    """The open calls before the end of ``text`` (each [name, arg_index, start of current arg,
    keywords used]) and whether ``text`` ends inside a string literal."""
    stack: list[list] = []
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "(":
            stack.append([_name_before(text, i), 0, i + 1, set()])
        elif c == "[":
            stack.append(["[", 0, i + 1, set()])
        elif c in ")]" and stack:
            stack.pop()
        elif c == "," and stack:
            kw = re.match(r"\s*([A-Za-z_]\w*)\s*=(?!=)", text[stack[-1][2] : i])
            if kw:
                stack[-1][3].add(kw.group(1))
            stack[-1][1] += 1
            stack[-1][2] = i + 1
        i += 1
    return stack, quote is not None


def _name_before(text: str, i: int) -> str:
    """The name that ends just before ``text[i]`` (spaces allowed between), read backwards: linear
    in the name's length, however long the line."""
    j = i
    while j > 0 and text[j - 1] in " \t":
        j -= 1
    k = j
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "_."):
        k -= 1
    name = text[k:j]
    return name if re.fullmatch(r"[A-Za-z_][\w.]*", name) else ""


def call_context(before: str) -> CallContext | None:
    """The call the cursor is in, given the text of its line before it."""
    stack, _ = _scan(before[-MAX_LINE:])
    calls = [s for s in stack if s[0] != "["]
    if not calls or not calls[-1][0]:
        return None
    name, index, start, used = calls[-1]
    kw = re.match(r"\s*([A-Za-z_]\w*)\s*=(?!=)", before[-MAX_LINE:][start:]) if calls[-1] is stack[-1] else None
    if kw is None and stack and stack[-1] is not calls[-1]:  # inside a list: find the keyword the list is given to
        outer_start = calls[-1][2]
        kw = re.match(r"\s*([A-Za-z_]\w*)\s*=(?!=)", before[-MAX_LINE:][outer_start:])
    return CallContext(name, index, kw.group(1) if kw else None, set(used))


def word_at(line: str, col: int) -> tuple[str, int, int] | None:
    """The name (``clean.html``, ``output``) under column ``col`` of ``line``, with its span."""
    for m in _WORD.finditer(line[: col + 200]):
        if m.start() <= col <= m.end():
            return m.group(0).rstrip("."), m.start(), m.start() + len(m.group(0).rstrip("."))
        if m.start() > col:
            break
    return None


# ---------------------------------------------------------------- completion


@dataclass(frozen=True, slots=True)
class Completion:
    label: str
    kind: str  # "operator", "signal", "column", "parameter", "value", "keyword", "type"
    detail: str = ""
    insert: str | None = None  # snippet text (``$1`` placeholders) when not the label
    doc: str = ""


def _step_line(line: str) -> tuple[str, str, int] | None:
    """(context, text, offset): what part of a step line the text after ``offset`` is, past a list
    dash, a ``filter:``/``where:`` key and an opening quote. context: "step" (a step string) or
    "expr" (a filter:/where: expression); None when the line is not a step."""
    m = re.match(r"(\s*-\s+)(?:(filter|where)\s*:\s*)?(['\"]?)", line)
    if not m:
        m2 = re.match(r"(\s*)(filter|where)\s*:\s*(['\"]?)", line)  # `where:`'s sibling lines inside a step mapping
        return ("expr", line[m2.end() :], m2.end()) if m2 else None
    if m.group(2):
        return "expr", line[m.end() :], m.end()
    return "step", line[m.end() :], m.end()


def _required_params(spec) -> list[str]:
    return [str(e["loc"][0]) for e in (spec.no_params or ()) if e.get("type") == "missing" and e.get("loc")]


def _snippet(spec) -> str:
    parts = [f"${{{i}:{a.name}}}" for i, a in enumerate(spec.args, 1)]
    n = len(parts)
    for j, p in enumerate(_required_params(spec), n + 1):
        parts.append(f"{p}=${{{j}}}")
    return f"{spec.name}({', '.join(parts)})"


def _op_items(reg: Registry, kinds: tuple[OpKind, ...]) -> list[Completion]:
    out = []
    for name in reg.names():
        spec = reg.spec(name)
        if spec is None or spec.kind not in kinds:
            continue
        out.append(Completion(name, "signal" if spec.kind == OpKind.SIGNAL else "operator", spec.signature, _snippet(spec)))
    return out


def _literal_values(spec, param: str) -> list[str]:
    for name, _required, check in spec.checks or ():
        if name == param:
            if check.get("t") == "literal":
                return list(check["expected"])
            if check.get("t") == "bool":
                return ["true", "false"]
    if spec.wants.get(param) == "bool":
        return ["true", "false"]
    return []


def _column_items(a: Analysis, line: int) -> list[Completion]:
    out = []
    for name, t in a.columns_at(line).items():
        origin = a.origins.get(name)
        out.append(Completion(col_text(name), "column", str(t), None, origin.origin if origin else ""))
    return out


def complete(a: Analysis, line: int, col: int, reg: Registry | None = None) -> list[Completion]:
    """What may be written at ``line``:``col`` (0-based, code points)."""
    reg = reg or registry()
    text = a.lines[line] if 0 <= line < len(a.lines) else ""
    before = text[:col][-MAX_LINE:]
    if not before.startswith((" ", "\t", "-")):  # a top-level key
        if re.match(r"require\s*:\s*\[?(?:[\w`]+\s*,\s*)*[\w`]*$", before):  # the input columns the output keeps
            return [Completion(col_text(n), "column", str(t), None, "input column") for n, t in a.columns_at(0).items()]
        if re.fullmatch(r"[A-Za-z_]*", before):
            return [Completion(k, "keyword", "top-level key", f"{k}: ") for k in TOP_LEVEL_KEYS]
        return []
    if re.match(r"\s+[\w.`]+\s*:\s*\w*$", before) and _in_block(a, line, "columns"):
        return [Completion(t, "type", "column type") for t in _TYPES]
    where = _step_line(before)
    if where is None:
        return []
    context, body, _ = where
    stack, in_string = _scan(body)
    call = call_context(body)
    if call is not None:
        spec = reg.spec(call.name)
        if spec is None:
            return []
        if call.keyword:
            values = _literal_values(spec, call.keyword)
            if in_string:
                return [Completion(v, "value", f"{call.keyword} of {spec.name}") for v in values]
            return [Completion(v if v in ("true", "false") else f'"{v}"', "value", f"{call.keyword} of {spec.name}") for v in values]
        if in_string:
            return []
        params = [Completion(p, "parameter", f"{p}: {t}", f"{p}=") for p, t in spec.wants.items() if p not in call.used]
        return params + _column_items(a, line) + _op_items(reg, (OpKind.SIGNAL,))
    if in_string:
        return []
    if context == "step" and re.fullmatch(r"[\w.]*", body):
        keys = [Completion("filter", "keyword", "keep the rows where a condition holds", "filter: "),
                Completion("where", "keyword", "apply steps to the rows where a condition holds", "where: ${1}\n  do:\n    - ${2}")]
        return keys + _op_items(reg, (OpKind.MAP, OpKind.FILTER, OpKind.GLOBAL, OpKind.GENERATE))
    if context == "step" and not re.search(r"^\s*[\w`][\w` ]*\s*=(?!=)", body):
        return []
    return _column_items(a, line) + _op_items(reg, (OpKind.SIGNAL,))


def _in_block(a: Analysis, line: int, key: str) -> bool:
    for i in range(line, -1, -1):
        t = a.lines[i]
        if t and not t[0].isspace() and not t.startswith("#"):
            return t.startswith(f"{key}:")
    return False


# ---------------------------------------------------------------- hover and signatures


def op_markdown(op) -> str:
    """An operator's help as `autodp ops NAME` prints it, with its parameters' ranges and defaults."""
    from ..commands.language import op_text

    lines = ["```", op_text(op), "```"]
    props = op.Params.model_json_schema().get("properties", {})
    if props:
        lines += ["", "| parameter | type | default | allowed |", "|---|---|---|---|"]
        for name, p in props.items():
            lines.append(f"| `{name}` | {_ptype(p)} | {_default(p)} | {_allowed(p)} |")
    return "\n".join(lines)


def _ptype(p: dict) -> str:
    if "enum" in p:
        return "one of " + ", ".join(f"`{v}`" for v in p["enum"])
    if p.get("type") == "array":
        return f"list[{p.get('items', {}).get('type', 'any')}]"
    return str(p.get("type", p.get("anyOf", "any")))


def _default(p: dict) -> str:
    return f"`{p['default']!r}`" if "default" in p else "required"


def _allowed(p: dict) -> str:
    bounds = [f"{sym} {p[k]}" for k, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
              if k in p]
    bounds += [f"{k} {p[k]}" for k in ("minLength", "maxLength", "minItems", "maxItems") if k in p]
    return ", ".join(bounds) or "-"


def hover(a: Analysis, line: int, col: int, reg: Registry | None = None) -> tuple[str, int, int] | None:
    """Markdown for the name under ``line``:``col``, with the span it is about."""
    reg = reg or registry()
    if not 0 <= line < len(a.lines):
        return None
    text = a.lines[line][:MAX_LINE]
    w = word_at(text, col)
    if w is None:
        return None
    name, start, end = w
    after = text[end:].lstrip()
    if after.startswith("(") and name in reg:
        op = reg.get(name)
        return op_markdown(op), start, end
    if after.startswith("=") and not after.startswith("=="):
        call = call_context(step_body(text[:start]))
        if call is not None and (spec := reg.spec(call.name)) is not None and name in spec.wants:
            prop = reg.get(call.name).Params.model_json_schema().get("properties", {}).get(name, {})
            desc = f"\n\n{prop['description']}" if prop.get("description") else ""
            return (f"**{name}**: {_ptype(prop)} — parameter of `{call.name}`\n\ndefault: {_default(prop)}; "
                    f"allowed: {_allowed(prop)}{desc}\n\n```\n{spec.signature}\n```"), start, end
    c = a.column(name, line)
    if c is not None and c.type is not None:
        return f"**{c.name}**: `{c.type}` — column, {c.origin}", start, end
    return None


def signature_parts(signature: str) -> list[tuple[int, int]]:
    """The spans of the parameters in a signature line ``name(a: str, b: int = 3) -> float``."""
    open_ = signature.find("(")
    close = signature.rfind(")")
    spans, depth, start = [], 0, open_ + 1
    for i in range(open_ + 1, close):
        c = signature[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            spans.append((start, i))
            start = i + 2
    if close > open_ + 1:
        spans.append((start, close))
    return spans


def active_parameter(spec, call: CallContext) -> int | None:
    """The index (in the signature) of the parameter the cursor is on: the keyword being given, the
    positional argument, or past those the first parameter not given yet (None when all are)."""
    params = list(spec.wants)
    if call.keyword in spec.wants:
        return len(spec.args) + params.index(call.keyword)
    if call.arg_index < len(spec.args):
        return call.arg_index
    if spec.args and spec.args[-1].variadic:
        return len(spec.args) - 1
    free = [i for i, p in enumerate(params) if p not in call.used]
    return len(spec.args) + free[0] if free else None
