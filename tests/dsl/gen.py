"""Hypothesis generators of valid .dp strategies, written messily on purpose.

Every generated strategy type-checks against ``COLUMNS`` and uses only vectorised operators, so it
can be executed on generated frames. The text is rendered with random spacing and redundant
parentheses, so formatting and parsing are exercised, not just the canonical spelling.
"""

from __future__ import annotations

import polars as pl
from hypothesis import strategies as st

COLUMNS = {"instruction": pl.String, "output": pl.String, "n": pl.Int64, "x": pl.Float64}
TEXT_COLS = ("instruction", "output")
NUM_SIGNALS = ("chars", "words")


def _sp(draw) -> str:
    return draw(st.sampled_from(["", " ", "  "]))


@st.composite
def num_expr(draw, depth=0) -> str:
    choices = ["lit", "col", "signal"] + (["bin", "neg", "paren"] if depth < 2 else [])
    kind = draw(st.sampled_from(choices))
    if kind == "lit":
        v = draw(st.one_of(st.integers(-50, 500), st.floats(-10, 100, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 3))))
        return repr(v) if isinstance(v, float) else str(v)
    if kind == "col":
        return draw(st.sampled_from(["n", "x"]))
    if kind == "signal":
        return f"{draw(st.sampled_from(NUM_SIGNALS))}({_sp(draw)}{draw(st.sampled_from(TEXT_COLS))}{_sp(draw)})"
    if kind == "neg":
        return f"-{draw(st.sampled_from(['n', 'x', 'chars(output)']))}"
    if kind == "paren":
        return f"({draw(num_expr(depth + 1))})"
    op = draw(st.sampled_from(["+", "-", "*"]))
    return f"{draw(num_expr(depth + 1))}{_sp(draw)}{op}{_sp(draw)}{draw(num_expr(depth + 1))}"


@st.composite
def bool_expr(draw, depth=0) -> str:
    choices = ["cmp", "cmp"] + (["and", "or", "not", "paren"] if depth < 2 else [])
    kind = draw(st.sampled_from(choices))
    if kind == "cmp":
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        return f"{draw(num_expr(1))} {op} {draw(num_expr(1))}"
    if kind == "not":
        return f"not {draw(bool_expr(depth + 1))}" if depth else f"not ({draw(bool_expr(depth + 1))})"
    if kind == "paren":
        return f"({draw(bool_expr(depth + 1))})"
    return f"({draw(bool_expr(depth + 1))}) {kind} ({draw(bool_expr(depth + 1))})"


@st.composite
def step(draw, depth=0, defined=()) -> str:
    kinds = ["filter", "filter", "assign", "dedup"] + (["where"] if depth == 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "filter":
        return f"- filter: {draw(bool_expr())}"
    if kind == "assign":
        name = draw(st.sampled_from(["s1", "s2", "x"]))
        return f"- {name} = {draw(num_expr())}"
    if kind == "dedup" and depth == 0:
        cols = draw(st.sampled_from(["output", "instruction, output", 'instruction + " " + output']))
        lc = draw(st.sampled_from(["", ", lowercase=true", ", lowercase=false"]))
        return f"- dedup.exact({cols}{lc})"
    if kind == "dedup":
        return f"- filter: {draw(bool_expr())}"
    inner = draw(st.lists(step(depth=1), min_size=1, max_size=3))
    body = "\n".join("      " + s for s in inner)
    return f"- where: {draw(bool_expr())}\n    do:\n{body}"


@st.composite
def strategy_text(draw) -> str:
    steps = draw(st.lists(step(), min_size=1, max_size=6))
    body = "\n".join("  " + s for s in steps)
    cols = "\n".join(f"  {n}: {'str' if t == pl.String else 'int' if t == pl.Int64 else 'float'}" for n, t in COLUMNS.items())
    return f"dp: 1\nname: gen\ncolumns:\n{cols}\nsteps:\n{body}\n"


WORDS = ["a", "b", "heart", "the", "x<y", "&amp;", "  ", "é", "Doctor", "ok"]


@st.composite
def frame(draw) -> pl.DataFrame:
    n = draw(st.integers(0, 12))
    text = st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)
    return pl.DataFrame(
        {
            "instruction": draw(st.lists(text, min_size=n, max_size=n)),
            "output": draw(st.lists(text, min_size=n, max_size=n)),
            "n": draw(st.lists(st.integers(-5, 50), min_size=n, max_size=n)),
            "x": draw(st.lists(st.floats(-5, 50, allow_nan=False), min_size=n, max_size=n)),
        },
        schema=COLUMNS,
    )


# ---------------------------------------------------------------- documents fmt must not lose

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)  # YAML cannot hold a lone surrogate
_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_KNOWN = ("dp", "name", "description", "columns", "require", "steps")
# `<<` (merge) and `=` (value) are YAML 1.1 keys with a meaning of their own
_KEY = _TEXT.filter(lambda k: k.strip() and k not in _KNOWN and k not in ("<<", "="))
_LITERAL = st.one_of(
    st.integers().map(str),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e309", "12e999", "0.1", "1e-07", "99999999999999999999999999999999999999999"]),
)


@st.composite
def messy_document(draw) -> str:
    """A valid strategy with what careless hands add: keys .dp does not define (any YAML value),
    descriptions in any YAML style with any characters, literals at the edges, sometimes a comment."""
    import yaml

    src = draw(strategy_text())
    steps_at = src.index("steps:\n")
    head, steps = src[:steps_at], src[steps_at:]
    if draw(st.booleans()):
        style = draw(st.sampled_from([None, '"', "'", "|", ">"]))
        desc = yaml.safe_dump({"description": draw(_TEXT)}, default_style=style, allow_unicode=draw(st.booleans()), width=1 << 20)
        head = head.replace("name: gen\n", "name: gen\n" + desc.replace("'description'", "description").replace('"description"', "description"))
    for name in draw(st.lists(_TEXT.filter(str.strip), max_size=2)):  # odd column names, declared and required
        entry = yaml.safe_dump({name: "str"}, width=1 << 20)
        head = head.replace("columns:\n", "columns:\n" + "".join("  " + line for line in entry.splitlines(keepends=True)), 1)
    if draw(st.booleans()):
        required = draw(st.lists(_TEXT, max_size=3))
        flow = yaml.safe_dump(required, default_flow_style=True, width=1 << 20).removesuffix("\n...\n")
        head += f"require: {flow}" if draw(st.booleans()) else yaml.safe_dump({"require": required}, width=1 << 20)
    steps = steps.replace("steps:\n", f"steps:\n  - filter: words(output) > {draw(_LITERAL)}\n", 1)
    extras = draw(st.dictionaries(_KEY, _VALUE, max_size=3))
    extra = yaml.safe_dump(extras, default_flow_style=False, allow_unicode=draw(st.booleans()), width=1 << 20) if extras else ""
    parts = [head, steps, extra] if draw(st.booleans()) else [head, extra, steps]
    text = "".join(parts)
    if draw(st.integers(0, 9)) == 7:
        lines = text.splitlines(keepends=True)
        lines.insert(draw(st.integers(0, len(lines))), "# a note\n")
        text = "".join(lines)
    return text
