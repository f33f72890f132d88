"""The editor integration in editors/: the VS Code extension's files agree with each other, and its
TextMate grammar tokenizes the curated strategies as the language reads them.

The grammar is run by a small TextMate engine below (``match`` with captures, ``begin``/``end``
regions, ``include``; earliest match wins, the end pattern on a tie, the first listed pattern
among the rest). Its regexes are written in the subset that Oniguruma (VS Code) and Python's
``re`` read alike, and each is compiled here.
"""

from __future__ import annotations

import json
import re

import pytest

from autodp_dsl.compiler import json_schema
from autodp_dsl.document import load_document
from autodp_dsl.syntax import AAssign, ABin, ACall, ACol, AKwarg, AList, AUn, parse_expr, parse_step
from tests.conftest import ROOT

VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "dp.tmLanguage.json").read_text())
STRATEGIES = sorted((ROOT / "strategies").glob("*.dp"))


class Tokenizer:
    """Scopes per character of each line, by the rules of a TextMate grammar (single-line regions
    are all this grammar has; a region still open at the end of a line is closed there)."""

    def __init__(self, grammar: dict):
        self.repo = grammar["repository"]
        self.top = grammar["patterns"]
        self.cache: dict[str, re.Pattern] = {}

    def rx(self, source: str) -> re.Pattern:
        if source not in self.cache:
            self.cache[source] = re.compile(source)
        return self.cache[source]

    def flat(self, patterns: list[dict]) -> list[dict]:
        out = []
        for p in patterns:
            if "include" in p:
                ref = self.repo[p["include"].removeprefix("#")]
                out += self.flat(ref["patterns"]) if "patterns" in ref and "begin" not in ref and "match" not in ref else [ref]
            else:
                out.append(p)
        return out

    def line(self, text: str) -> list[list[str]]:
        scopes: list[list[str]] = [[] for _ in text]
        self._run(text, 0, len(text), self.top, None, [], scopes)
        return scopes

    def _paint(self, scopes, m: re.Match, caps: dict, base: list[str]) -> None:
        for k, v in caps.items():
            g = int(k)
            if m.group(g) is not None:
                for i in range(m.start(g), m.end(g)):
                    scopes[i] = base + [v["name"]]

    def _run(self, text, pos, stop, patterns, end: str | None, base, scopes) -> int:
        pats = self.flat(patterns)
        while pos <= stop:
            best = None
            if end is not None:
                e = self.rx(end).search(text, pos)
                if e:
                    best = (e.start(), -1, e, None)
            for i, p in enumerate(pats):
                m = self.rx(p.get("match") or p["begin"]).search(text, pos)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), i, m, p)
            if best is None:
                return stop
            start, _, m, p = best
            if p is None:  # the region ends
                self._paint(scopes, m, self.repo_caps(end), base)
                return m.end()
            name = [p["name"]] if "name" in p else []
            if "match" in p:
                for i in range(m.start(), m.end()):
                    scopes[i] = base + name
                self._paint(scopes, m, p.get("captures", {}), base + name)
                pos = m.end() if m.end() > m.start() else m.end() + 1
            else:
                self._paint(scopes, m, p.get("beginCaptures", {}), base + name)
                after = self._run(text, m.end(), stop, p.get("patterns", []), p["end"], base + name, scopes)
                pos = after if after > pos else pos + 1
        return pos

    def repo_caps(self, end: str) -> dict:
        for p in self.repo.values():
            if p.get("end") == end and "endCaptures" in p:
                return p["endCaptures"]
        return {}


def _all_regexes(node) -> list[str]:
    if isinstance(node, dict):
        out = [node[k] for k in ("match", "begin", "end") if k in node]
        for v in node.values():
            out += _all_regexes(v)
        return out
    if isinstance(node, list):
        return [r for v in node for r in _all_regexes(v)]
    return []


def test_every_grammar_regex_compiles():
    regexes = _all_regexes(GRAMMAR)
    assert len(regexes) > 20
    for r in regexes:
        re.compile(r)
        assert r"\G" not in r and r"\h" not in r and "(?<" not in r.replace("(?<=", "").replace("(?<!", "")  # Oniguruma-only syntax


def _names(node, out):
    """(name, start, end, kind) of the calls, columns and parameters of a step's syntax tree."""
    match node:
        case ACall(name=name, args=args, kwargs=kwargs):
            out.append((name, node.start, node.name_end, "call"))
            for a in (*args, *kwargs):
                _names(a, out)
        case AKwarg(name=name, value=value):
            out.append((name, node.start, node.start + len(name), "param"))
            _names(value, out)
        case ACol(name=name):
            out.append((name, node.start, node.end, "column"))
        case ABin(left=left, right=right):
            _names(left, out)
            _names(right, out)
        case AUn(operand=operand):
            _names(operand, out)
        case AList(items=items):
            for i in items:
                _names(i, out)
        case AAssign(value=value):
            out.append((node.name, node.start, node.name_end, "define"))
            _names(value, out)
    return out


EXPECTED_SCOPE = {"call": ("entity.name.function.operator.dp", "support.function.signal.dp"), "column": ("variable.other.column",),
                  "param": ("variable.parameter.dp",), "define": ("entity.name.variable.definition.dp",)}


@pytest.mark.parametrize("path", STRATEGIES, ids=[p.name for p in STRATEGIES])
def test_grammar_tokenizes_the_curated_strategies_as_the_parser_reads_them(path):
    text = path.read_text()
    lines = text.splitlines()
    tok = Tokenizer(GRAMMAR)
    scoped = [tok.line(ln) for ln in lines]
    doc = load_document(text, [])
    checked = 0

    def visit(raws):
        nonlocal checked
        for raw in raws:
            if not raw.loc.exact:
                continue
            node = parse_step(raw.text) if raw.kind == "call" else parse_expr(raw.text)
            line = scoped[raw.loc.line - 1]
            for name, start, end, kind in _names(node, []):
                col = raw.loc.col - 1 + start
                for i in range(col, raw.loc.col - 1 + end):
                    assert line[i] and line[i][-1].startswith(EXPECTED_SCOPE[kind]), (path.name, raw.text, name, line[i])
                checked += 1
            step_key = lines[raw.loc.line - 1][: raw.loc.col - 1]
            if raw.kind in ("filter", "where"):
                k = step_key.index(raw.kind)
                assert line[k][-1] == "keyword.control.step.dp"
            visit(raw.children)

    visit(doc.steps)
    assert checked > 5
    for i, ln in enumerate(lines):  # comments and top-level keys
        if re.match(r"(dp|name|description|columns|require|steps):", ln):
            assert scoped[i][0][-1] == "keyword.other.key.dp"
        if "#" in ln and ln.lstrip().startswith("#"):
            assert scoped[i][ln.index("#")][-1].startswith("comment")


def test_grammar_highlights_what_the_language_has():
    tok = Tokenizer(GRAMMAR)
    line = "  - filter: not heading_only(output) and words(`my col`, n=3) >= 2.5 or tag == \"x\"  # why"
    scopes = tok.line(line)

    def at(sub):
        return scopes[line.index(sub)][-1]

    assert at("not") == "keyword.operator.logical.dp"
    assert at("heading_only") == "support.function.signal.dp"
    assert at("`my col`") == "variable.other.column.quoted.dp"
    assert at("n=") == "variable.parameter.dp"
    assert at("2.5") == "constant.numeric.dp"
    assert at(">=") == "keyword.operator.comparison.dp"
    assert at('"x"') == "string.quoted.double.dp"
    assert at("# why") == "comment.line.number-sign.dp"
    assert at("tag") == "variable.other.column.dp"
    quoted = "  - 'clean.pii(output, placeholder=\"[{kind}]\")'"
    s = tok.line(quoted)
    assert s[quoted.index("clean.pii")][-1] == "entity.name.function.operator.dp"
    cols = tok.line("  score: float")
    assert cols[2][-1] == "variable.other.column.dp" and cols[-1][-1] == "storage.type.dp"


def test_the_extension_files_agree():
    pkg = json.loads((VSCODE / "package.json").read_text())
    contributes = pkg["contributes"]
    (lang,) = contributes["languages"]
    (grammar,) = contributes["grammars"]
    assert lang["extensions"] == [".dp"] and grammar["language"] == lang["id"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"]
    assert (VSCODE / grammar["path"]).is_file() and (VSCODE / lang["configuration"]).is_file()
    assert (VSCODE / pkg["main"]).is_file()
    assert "autodp" in (VSCODE / pkg["main"]).read_text() and '"lsp"' in (VSCODE / pkg["main"]).read_text()
    assert contributes["configuration"]["properties"]["autodp.command"]["default"] == ["autodp", "lsp"]
    conf = json.loads((VSCODE / lang["configuration"]).read_text())
    re.compile(conf["wordPattern"])
    for rule in conf["indentationRules"].values():
        re.compile(rule)
    schema_path = VSCODE / contributes["yamlValidation"][0]["url"]
    assert json.loads(schema_path.read_text()) == json_schema(), "regenerate: autodp schema > editors/vscode/schema/dp.schema.json"
