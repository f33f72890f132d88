"""Loading the YAML layer of a .dp file, keeping every position.

The result is a ``RawDocument``: the top-level fields and a tree of ``RawStep`` values, each with
the step's text and a ``Locator`` that maps an offset inside that text back to a line and column
of the file. YAML problems become diagnostics, never exceptions.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import yaml

from .diagnostics import Diagnostic, Severity
from .edits import name_fixes
from .syntax import MAX_DEPTH

__all__ = ["Limits", "DEFAULT_LIMITS", "Locator", "RawStep", "RawDocument", "load_document", "position", "TOP_LEVEL_KEYS"]

# libyaml's loader when present (about 10x faster); it reports the same marks
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TOP_LEVEL_KEYS = ("dp", "name", "description", "columns", "require", "steps")
STEP_KEYS = ("filter", "where", "do")
SUPPORTED_VERSIONS = (1,)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on a document, so that a small hostile file cannot cost minutes or a traceback.

    A .dp file is written by agents as well as people: each bound is a located diagnostic
    (``limit-exceeded``), checked before the work it guards. Pass other values to
    ``compile_text``/``format_source`` to change them.
    """

    document_bytes: int = 1 << 20  # the UTF-8 size of the file
    alias_expansion: int = 10  # YAML aliases may expand the document to this many times its nodes
    steps: int = 500  # steps in all, those inside `where:` blocks included
    where_depth: int = 32  # `where:` blocks inside `where:` blocks
    yaml_depth: int = 100  # YAML collections inside collections (32 `where:` levels are about 68)
    expr_depth: int = MAX_DEPTH  # nesting of an expression's tree (a chain of n `and` is n deep)


DEFAULT_LIMITS = Limits()

# characters YAML does not allow in a document (YAML 1.1 printable set, as PyYAML's reader checks);
# compiled on the error path only (about 3 ms)
_NOT_YAML = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]"


@dataclass(frozen=True, slots=True)
class Locator:
    """Maps offsets in a scalar's value to file positions.

    Exact for single-line plain and quoted scalars (the common case); for block or multi-line
    scalars every offset maps to the scalar's first character.
    """

    line: int  # 1-based line of the value's first character
    col: int  # 1-based column of the value's first character
    exact: bool = True

    def at(self, offset: int) -> tuple[int, int]:
        return (self.line, self.col + offset) if self.exact else (self.line, self.col)


@dataclass(slots=True)
class RawStep:
    kind: str  # "call" (a DSL string), "filter", "where"
    text: str  # the DSL text (the step string, or the filter/where expression)
    loc: Locator
    path: str  # "3", "5.2"
    children: list[RawStep] = field(default_factory=list)
    line: int = 0  # where the step starts in the file (fmt keeps comments next to it)
    do_line: int = 0  # a `where:` step's `do:` key


@dataclass(slots=True)
class RawDocument:
    fields: dict
    field_locs: dict[str, Locator]
    steps: list[RawStep]
    limits: Limits = DEFAULT_LIMITS
    root: yaml.Node | None = None  # the composed YAML (fmt keeps what the loader does not read)


def _scalar_locator(node: yaml.Node, source_lines: list[str]) -> Locator:
    m = node.start_mark
    line, col = m.line + 1, m.column + 1
    style = getattr(node, "style", None)
    end = node.end_mark
    if style in ("'", '"'):
        exact = end.line == m.line and "\\" not in str(node.value) and "''" not in source_lines[m.line][m.column :]
        return Locator(line, col + 1, exact)
    if style in ("|", ">"):
        return Locator(line + 1, col, False)
    return Locator(line, col, end.line == m.line)


def _diag(code: str, message: str, node: yaml.Node | None, hints=None, severity=Severity.ERROR, path=None) -> Diagnostic:
    line = node.start_mark.line + 1 if node is not None else 1
    col = node.start_mark.column + 1 if node is not None else 1
    end = None
    if node is not None and node.end_mark.line == node.start_mark.line:
        end = node.end_mark.column + 1
    return Diagnostic(code, message, line, col, end, severity, list(hints or []), path)


def _key_fixes(d: Diagnostic, key: str, pool, suggestions: list[str]) -> None:
    """Fixes for a misspelt mapping key (a plain scalar: its span is the key as written)."""
    d.fixes = name_fixes(key, pool, suggestions, d.line, d.column, d.end_column)


class _Budget:
    """What is left of the step bound while the steps are read."""

    __slots__ = ("limits", "steps", "stopped")

    def __init__(self, limits: Limits):
        self.limits = limits
        self.steps = limits.steps
        self.stopped = False


def _load_steps(seq: yaml.Node, prefix: str, lines: list[str], diags: list[Diagnostic], budget: _Budget, depth: int = 0) -> list[RawStep]:
    if not isinstance(seq, yaml.SequenceNode):
        diags.append(_diag("invalid-document", "`steps` must be a list of steps", seq, ["write each step on its own line starting with `- `"]))
        return []
    steps: list[RawStep] = []
    for i, item in enumerate(seq.value, 1):
        path = f"{prefix}{i}"
        if budget.stopped:
            break
        budget.steps -= 1
        if budget.steps < 0:
            budget.stopped = True
            diags.append(_diag("limit-exceeded", f"more than {budget.limits.steps} steps", item,
                               ["split the strategy, or raise the bound (`Limits.steps`)"], path=path))
            break
        if isinstance(item, yaml.ScalarNode):
            text = str(item.value)
            if not text.strip():
                diags.append(_diag("invalid-step", "empty step", item, path=path))
                continue
            steps.append(RawStep("call", text, _scalar_locator(item, lines), path, line=item.start_mark.line + 1))
        elif isinstance(item, yaml.MappingNode):
            keys = {k.value: (k, v) for k, v in item.value if isinstance(k, yaml.ScalarNode)}
            unknown = [k for k in keys if k not in STEP_KEYS]
            for k in unknown:
                hint = difflib.get_close_matches(k, STEP_KEYS, n=1)
                hints = [f"did you mean `{hint[0]}:`?"] if hint else []
                hints.append("a step is a string like `clean.html(output)`, or a mapping with `filter:`, or `where:` with `do:`")
                diags.append(_diag("invalid-step", f"unknown step key `{k}`", keys[k][0], hints, path=path))
                if not keys[k][0].style:  # plain (libyaml says "", PyYAML None)
                    _key_fixes(diags[-1], k, STEP_KEYS, hint)
            if unknown:
                continue
            if "filter" in keys and ("where" in keys or "do" in keys):
                diags.append(_diag("invalid-step", "a step cannot have both `filter:` and `where:`/`do:`", item, path=path))
                continue
            if "filter" in keys:
                _, v = keys["filter"]
                if not isinstance(v, yaml.ScalarNode) or not str(v.value).strip():
                    diags.append(_diag("invalid-step", "`filter:` takes one boolean expression", v, path=path))
                    continue
                steps.append(RawStep("filter", str(v.value), _scalar_locator(v, lines), path, line=item.start_mark.line + 1))
            elif "where" in keys:
                k, v = keys["where"]
                if not isinstance(v, yaml.ScalarNode) or not str(v.value).strip():
                    diags.append(_diag("invalid-step", "`where:` takes one boolean expression", v, path=path))
                    continue
                if "do" not in keys:
                    diags.append(_diag("invalid-step", "`where:` needs a `do:` list of steps", item, ["add `do:` with the steps to apply to the selected rows"], path=path))
                    continue
                if depth >= budget.limits.where_depth:
                    diags.append(_diag("limit-exceeded", f"`where:` blocks nest more than {budget.limits.where_depth} deep", k,
                                       ["combine the conditions with `and` instead of nesting blocks"], path=path))
                    budget.stopped = True
                    break
                children = _load_steps(keys["do"][1], f"{path}.", lines, diags, budget, depth + 1)
                steps.append(RawStep("where", str(v.value), _scalar_locator(v, lines), path, children, item.start_mark.line + 1,
                                     keys["do"][0].start_mark.line + 1))
            else:
                diags.append(_diag("invalid-step", "`do:` without `where:`", item, path=path))
        else:
            diags.append(_diag("invalid-step", "a step must be a string or a mapping", item, path=path))
    return steps


def _children(node: yaml.Node):
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return ()


def _duplicate_keys(node: yaml.MappingNode, diags: list[Diagnostic]) -> None:
    if len(node.value) < 2:
        return
    keys = [(k.tag, k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
    if len(set(keys)) == len(keys):
        return
    seen: dict[tuple, yaml.Node] = {}
    for k, _ in node.value:
        if isinstance(k, yaml.ScalarNode):
            key = (k.tag, k.value)
            if key in seen:
                first = seen[key].start_mark
                diags.append(_diag("duplicate-key", f"duplicate key `{k.value}` (first at line {first.line + 1})", k,
                                   ["YAML keeps only one of them: remove or rename one"]))
            else:
                seen[key] = k


def _too_deep(node: yaml.Node, limits: Limits, diags: list[Diagnostic]) -> bool:
    # the YAML layer is read (and fmt writes unknown keys back) by recursive code: bound it here
    diags.append(_diag("limit-exceeded", f"YAML collections nest more than {limits.yaml_depth} deep", node,
                       ["a .dp document is a few levels deep: flatten the value"]))
    return False


def _check_tree(root: yaml.Node, limits: Limits, diags: list[Diagnostic]) -> bool:
    """Duplicate keys and nesting of a document without aliases (the usual case: a tree, nothing
    shared). False when the document must not be read further."""
    scalar, mapping = yaml.ScalarNode, yaml.MappingNode
    stack = [(root, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > limits.yaml_depth:
            return _too_deep(n, limits, diags)
        depth += 1
        if type(n) is mapping:
            _duplicate_keys(n, diags)
            for k, v in n.value:
                if type(k) is not scalar:
                    stack.append((k, depth))
                if type(v) is not scalar:
                    stack.append((v, depth))
        else:  # a sequence
            for x in n.value:
                if type(x) is not scalar:
                    stack.append((x, depth))
    return True


def _check_graph(root: yaml.Node, limits: Limits, diags: list[Diagnostic]) -> bool:
    """Duplicate keys at every level, recursive aliases and alias expansion, in one pass over the
    composed nodes (aliases are shared nodes there, not copies). False when the document must not
    be read further."""
    size: dict[int, int] = {}  # node -> its node count with aliases expanded
    refs: dict[int, int] = {}
    nodes: dict[int, yaml.Node] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        i = id(node)
        kids = _children(node)
        if done:
            on_path.discard(i)
            size[i] = 1 + sum(size[id(c)] for c in kids)
            continue
        if i in size:
            continue
        if i in on_path:
            diags.append(_diag("limit-exceeded", "a YAML alias refers to a node that contains it (a recursive alias)", node))
            return False
        on_path.add(i)
        if len(on_path) > limits.yaml_depth:
            return _too_deep(node, limits, diags)
        nodes[i] = node
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            _duplicate_keys(node, diags)
        for c in kids:
            ci = id(c)
            refs[ci] = refs.get(ci, 0) + 1
            if ci not in size:
                stack.append((c, False))
    total, distinct = size[id(root)], len(size)
    if total > limits.alias_expansion * distinct:
        shared = [nodes[i] for i, n in refs.items() if n > 1]
        worst = max(shared, key=lambda n: size[id(n)] * refs[id(n)], default=root)
        diags.append(_diag("limit-exceeded", f"YAML aliases expand the document to {total} nodes, more than "
                           f"{limits.alias_expansion}x its {distinct} nodes", worst, ["write the steps out instead of repeating them with `*alias`"]))
        return False
    return True


LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # YAML's line breaks: its marks count lines by these


def position(source: str, at: int) -> tuple[int, int]:
    """1-based (line, column) of character ``at``, counted as YAML counts them."""
    line, start = 1, 0
    for m in LINE_BREAK.finditer(source, 0, at):
        line, start = line + 1, m.end()
    return line, at - start + 1


def _size_problem(source: str, limits: Limits, diags: list[Diagnostic]) -> bool:
    if len(source) <= limits.document_bytes // 4:  # a UTF-8 character is at most 4 bytes
        return False
    data = source.encode("utf-8", "surrogatepass")
    if len(data) <= limits.document_bytes:
        return False
    line, col = position(source, len(data[: limits.document_bytes].decode("utf-8", "ignore")))
    diags.append(Diagnostic("limit-exceeded", f"the document is {len(data)} bytes, more than the {limits.document_bytes} allowed",
                            line, col, None, Severity.ERROR, ["a strategy is a short list of steps; split the file"]))
    return True


def _reader_problem(source: str, e: yaml.YAMLError, diags: list[Diagnostic]) -> None:
    """A character YAML does not accept (NUL, a control character), at its true position."""
    m = re.search(_NOT_YAML, source)
    if m is None:
        diags.append(Diagnostic("yaml-syntax", f"invalid YAML: {str(e).strip()}", 1, 1))
        return
    line, col = position(source, m.start())
    diags.append(Diagnostic("yaml-syntax", f"invalid YAML: the control character U+{ord(m.group()):04X} is not allowed", line, col, col + 1,
                            Severity.ERROR, ['write it as an escape inside a double-quoted string, e.g. "\\t"']))


def load_document(source: str, diags: list[Diagnostic], limits: Limits = DEFAULT_LIMITS) -> RawDocument | None:
    """Parse the YAML of a .dp file; append problems to ``diags``; None if unusable."""
    if _size_problem(source, limits, diags):
        return None
    try:
        node = yaml.compose(source, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = (e.problem or str(e)).strip()
        ctx = f" ({e.context.strip()})" if e.context else ""
        diags.append(Diagnostic("yaml-syntax", f"invalid YAML: {msg}{ctx}", line, col, None, Severity.ERROR,
                                ["a .dp file is YAML; quote a step that contains `: ` or starts with a special character"]))
        return None
    except yaml.YAMLError as e:  # the reader's error: a character YAML does not allow
        _reader_problem(source, e, diags)
        return None
    if node is None:
        diags.append(Diagnostic("invalid-document", "the file is empty", 1, 1, hints=["start with `dp: 1`, a `name:` and a list of `steps:`"]))
        return None
    if not isinstance(node, yaml.MappingNode):
        diags.append(_diag("invalid-document", "a .dp file must be a YAML mapping with `dp`, `name` and `steps`", node))
        return None
    if not (_check_tree(node, limits, diags) if "&" not in source else _check_graph(node, limits, diags)):  # no anchor: no alias
        return None
    budget = _Budget(limits)
    lines = source.splitlines() or [""]
    fields: dict = {}
    locs: dict[str, Locator] = {}
    steps: list[RawStep] = []
    seen_steps = False
    present = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    for k, v in node.value:
        key = k.value if isinstance(k, yaml.ScalarNode) else None
        if key not in TOP_LEVEL_KEYS:
            hint = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
            hints = [f"did you mean `{hint[0]}`?"] if hint else []
            hints.append("top-level keys: " + ", ".join(TOP_LEVEL_KEYS))
            diags.append(_diag("unknown-key", f"unknown top-level key `{key}`", k, hints))
            if isinstance(key, str) and not k.style:  # plain
                _key_fixes(diags[-1], key, [t for t in TOP_LEVEL_KEYS if t not in present], hint)
            continue
        locs[key] = Locator(v.start_mark.line + 1, v.start_mark.column + 1)
        if key == "steps":
            seen_steps = True
            steps = _load_steps(v, "", lines, diags, budget)
            fields["__n_steps"] = len(v.value) if isinstance(v, yaml.SequenceNode) else 0
            continue
        try:
            fields[key] = yaml.safe_load(yaml.serialize(v))
        except yaml.YAMLError:  # e.g. an unknown tag
            diags.append(_diag("invalid-document", f"`{key}` has a value that cannot be read", v))
            continue
        fields[f"__node_{key}"] = v
    if not seen_steps:
        diags.append(_diag("missing-key", "missing `steps`", node, ["add `steps:` with a list of steps"]))
    version = fields.get("dp")
    if version is None:
        diags.append(_diag("missing-key", "missing `dp:` language version", node, ["add `dp: 1` as the first line"]))
    elif version not in SUPPORTED_VERSIONS:
        diags.append(_diag("unsupported-version", f"unsupported language version {version!r}", fields.get("__node_dp"),
                           [f"supported versions: {', '.join(map(str, SUPPORTED_VERSIONS))}"]))
    for key, kind in (("name", str), ("description", str)):
        if key in fields and not isinstance(fields[key], kind):
            diags.append(_diag("invalid-document", f"`{key}` must be a string", fields.get(f"__node_{key}")))
            fields.pop(key)
    if "columns" in fields and not (isinstance(fields["columns"], dict) and all(isinstance(t, str) for t in fields["columns"].values())):
        diags.append(_diag("invalid-document", "`columns` must map column names to types", fields.get("__node_columns"),
                           ["e.g. `columns: {instruction: str, output: str, score: float}`"]))
        fields.pop("columns")
    elif "columns" in fields:
        # `yes:` is the boolean true in YAML, and `1:` would then be the same Python key: names are strings
        for k, _ in fields["__node_columns"].value:
            if not (isinstance(k, yaml.ScalarNode) and k.tag == "tag:yaml.org,2002:str"):
                diags.append(_diag("invalid-document", f"column name `{getattr(k, 'value', k)}` is not a string in YAML", k,
                                   [f"quote it: `'{getattr(k, 'value', '')}': ...`"]))
                fields.pop("columns", None)
    if "require" in fields and not (isinstance(fields["require"], list) and all(isinstance(c, str) for c in fields["require"])):
        diags.append(_diag("invalid-document", "`require` must be a list of column names", fields.get("__node_require")))
        fields.pop("require")
    return RawDocument(fields, locs, steps, limits, node)
