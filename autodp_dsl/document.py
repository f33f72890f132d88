"""Loading the YAML layer of a .dp file, keeping every position.

The result is a ``RawDocument``: the top-level fields and a tree of ``RawStep`` values, each with
the step's text and a ``Locator`` that maps an offset inside that text back to a line and column
of the file. YAML problems become diagnostics, never exceptions.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import yaml

from .diagnostics import Diagnostic, Severity
from .fixes import name_fixes

__all__ = ["Locator", "RawStep", "RawDocument", "load_document", "TOP_LEVEL_KEYS"]

# libyaml's loader when present (about 10x faster); it reports the same marks
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TOP_LEVEL_KEYS = ("dp", "name", "description", "columns", "require", "steps")
STEP_KEYS = ("filter", "where", "do")
SUPPORTED_VERSIONS = (1,)


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


@dataclass(slots=True)
class RawDocument:
    fields: dict
    field_locs: dict[str, Locator]
    steps: list[RawStep]


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


def _load_steps(seq: yaml.Node, prefix: str, lines: list[str], diags: list[Diagnostic]) -> list[RawStep]:
    if not isinstance(seq, yaml.SequenceNode):
        diags.append(_diag("invalid-document", "`steps` must be a list of steps", seq, ["write each step on its own line starting with `- `"]))
        return []
    steps: list[RawStep] = []
    for i, item in enumerate(seq.value, 1):
        path = f"{prefix}{i}"
        if isinstance(item, yaml.ScalarNode):
            if item.tag != "tag:yaml.org,2002:str" and item.style is None:
                # a bare number/bool/null: still report it as an invalid step with its text
                pass
            text = str(item.value)
            if not text.strip():
                diags.append(_diag("invalid-step", "empty step", item, path=path))
                continue
            steps.append(RawStep("call", text, _scalar_locator(item, lines), path))
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
                steps.append(RawStep("filter", str(v.value), _scalar_locator(v, lines), path))
            elif "where" in keys:
                _, v = keys["where"]
                if not isinstance(v, yaml.ScalarNode) or not str(v.value).strip():
                    diags.append(_diag("invalid-step", "`where:` takes one boolean expression", v, path=path))
                    continue
                if "do" not in keys:
                    diags.append(_diag("invalid-step", "`where:` needs a `do:` list of steps", item, ["add `do:` with the steps to apply to the selected rows"], path=path))
                    continue
                children = _load_steps(keys["do"][1], f"{path}.", lines, diags)
                steps.append(RawStep("where", str(v.value), _scalar_locator(v, lines), path, children))
            else:
                diags.append(_diag("invalid-step", "`do:` without `where:`", item, path=path))
        else:
            diags.append(_diag("invalid-step", "a step must be a string or a mapping", item, path=path))
    return steps


def load_document(source: str, diags: list[Diagnostic]) -> RawDocument | None:
    """Parse the YAML of a .dp file; append problems to ``diags``; None if unusable."""
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
    except yaml.YAMLError as e:
        diags.append(Diagnostic("yaml-syntax", f"invalid YAML: {str(e).strip()}", 1, 1))
        return None
    if node is None:
        diags.append(Diagnostic("invalid-document", "the file is empty", 1, 1, hints=["start with `dp: 1`, a `name:` and a list of `steps:`"]))
        return None
    if not isinstance(node, yaml.MappingNode):
        diags.append(_diag("invalid-document", "a .dp file must be a YAML mapping with `dp`, `name` and `steps`", node))
        return None
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
            steps = _load_steps(v, "", lines, diags)
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
    if "require" in fields and not (isinstance(fields["require"], list) and all(isinstance(c, str) for c in fields["require"])):
        diags.append(_diag("invalid-document", "`require` must be a list of column names", fields.get("__node_require")))
        fields.pop("require")
    return RawDocument(fields, locs, steps)
