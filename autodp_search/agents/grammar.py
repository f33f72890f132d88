"""A grammar of the strategies an agent may propose, for constrained decoding.

``dp_grammar(catalog, columns)`` writes a Lark grammar (the dialect llguidance reads; plain Lark
parses it too) of .dp documents in the form the search writes them::

    dp: 1
    name: short-name
    steps:
      - clean.html(output)
      - filter: words(output) >= 8 and alnum_ratio(output) > 0.5
      - where: lowq > 0.5
        do:
          - refine.rewrite(output)

It is derived from the operator catalog (every operator, its arguments and its parameters with
their types and choices) and the data's visible columns, so even a small model emits documents that
parse, with real operator and column names. It leaves out what the agent path refuses anyway
(string literals, text-matching parameters such as regular expressions and word lists, free-text
parameters) and what it cannot type (numbers may still be outside a parameter's range: the lint and
repair loop catches that). ``--max-steps`` bounds the steps.
"""

from __future__ import annotations

import json

from .base import OpInfo

__all__ = ["dp_grammar"]

_FREE_TEXT = ("str", "list")


def _lit(s: str) -> str:
    return json.dumps(s)


def _alts(items) -> str:
    items = list(dict.fromkeys(items))
    return "(" + " | ".join(items) + ")" if len(items) > 1 else items[0]


def _int_range(lo, hi) -> str:
    """A regex of integers, roughly within [lo, hi]: as many digits as the bounds allow (a value
    with the right number of digits may still be out of range: the lint says so)."""
    lo = max(int(lo), 0) if lo is not None else 0
    least = len(str(lo)) if lo > 0 else 1
    most = max(least, len(str(int(hi)))) if hi is not None else max(least, 5)
    first = "[1-9]" if lo > 0 else "[0-9]"
    if least == most == 1:
        return f"/[{max(lo, 0)}-{min(int(hi), 9) if hi is not None else 9}]/"
    return f"/{first}[0-9]{{{least - 1},{most - 1}}}/"


def _param_value(p: dict) -> str | None:
    if "choices" in p:
        return _alts(_lit(json.dumps(c)) for c in p["choices"])
    t = p.get("type")
    lo = p.get("ge", p.get("gt"))
    hi = p.get("le", p.get("lt"))
    if t == "bool":
        return '("true" | "false")'
    if t == "int":
        return _int_range(lo + (1 if "gt" in p else 0) if lo is not None else None, hi)
    if t == "float":
        if lo is not None and hi is not None and lo >= 0 and hi <= 1:
            return '/0\\.[0-9]{1,3}/' if "lt" in p or "gt" in p else '(/0\\.[0-9]{1,3}/ | "1.0")'
        return "NUMBER"
    return None  # str / list: free text or text matching: the agent path leaves them at their defaults


def _rule_name(op: str) -> str:
    return "op_" + op.replace(".", "_")


# Literals are written so that llguidance's lexer, which decides with one byte of lookahead, never
# has to take back more than that: ", " is one literal, and a parameter is ", " then "name=" (with
# "," " " beside ", name=" the lexer followed ", name=" past ", " and a second column was
# unreachable; tests/search/test_agent_grammar.py feeds it every operator token by token).


def dp_grammar(catalog: tuple[OpInfo, ...], columns: list[tuple[str, str]], max_steps: int = 4,
               max_inner: int = 2) -> str:
    """The Lark grammar of agent strategies over ``catalog`` and ``columns`` ((name, type) pairs)."""
    text_cols = [n for n, t in columns if t == "str" and not n.startswith("__")]
    num_cols = [n for n, t in columns if t in ("int", "float", "number") and not n.startswith("__")]
    if not text_cols:
        raise ValueError("the data has no text column to process")
    lines: list[str] = []
    step_ops: list[str] = []
    inner_ops: list[str] = []
    num_calls: list[str] = []
    bool_calls: list[str] = []
    for o in catalog:
        args = []
        for a in o.args:
            rule = "textarg" if a["type"] == "str" else "numarg"
            args.append(f'{rule} (", " {rule})*' if a.get("variadic") else rule)
        params = [(p["name"], v) for p in o.params if (v := _param_value(p)) is not None]
        name = _rule_name(o.name)
        size = {"fraction", "k"} <= {pn for pn, _ in params}  # selection: one of them is required
        if size:
            fr, kk = '(/0\\.[0-9]{0,2}[1-9]/ | "1.0")', "/[1-9][0-9]{0,5}/"  # a size of 0 is refused
            params = [(pn, pv) for pn, pv in params if pn not in ("fraction", "k")]
        if args:
            body = ' ", " '.join(args)
            req = f' ", " ("fraction=" {fr} | "k=" {kk})' if size else ""
            opt = " ".join(f'(", " "{pn}=" {pv})?' for pn, pv in params)
            lines.append(f'{name}: "{o.name}(" {body}{req} {opt} ")"')
        elif size:
            opt = " ".join(f'(", " "{pn}=" {pv})?' for pn, pv in params)
            lines.append(f'{name}: "{o.name}(" ("fraction=" {fr} | "k=" {kk}) {opt} ")"')
        else:  # no argument: no parameter, or one of them
            choices = ['"()"'] + [f'"({pn}=" {pv} ")"' for pn, pv in params]
            lines.append(f'{name}: "{o.name}" {_alts(choices)}')
        if o.kind == "signal":
            (bool_calls if o.returns == "bool" else num_calls).append(name)
        else:
            step_ops.append(name)
            if o.kind not in ("global",):  # global steps compare rows: not inside where-blocks
                inner_ops.append(name)
    lines.append("textarg: " + _alts(_lit(c) for c in text_cols))
    lines.append("numarg: " + _alts([*(_lit(c) for c in num_cols), "numcall"]))
    lines.append("numcall: " + _alts(num_calls))
    if bool_calls:
        lines.append("boolcall: " + _alts(bool_calls))
    cond = ['numcall CMP NUMBER']
    if num_cols:
        cond.append("numcol CMP NUMBER")
        lines.append("numcol: " + _alts(_lit(c) for c in num_cols))
    if bool_calls:
        cond += ["boolcall", '"not " boolcall']
    lines.append("cond: " + _alts(cond))
    lines.append('pred: cond (" and " cond)?')
    lines.append('filter: "filter: " pred')
    lines.append("stepop: " + _alts(step_ops))
    lines.append("innerop: " + _alts(inner_ops))
    inner = '"\\n      - " (innerop | filter)'
    lines.append(f'where: "where: " pred "\\n    do:" {inner}' + f" ({inner})?" * (max_inner - 1))
    lines.append('step: "\\n  - " (stepop | filter | where)')
    lines.append('start: "dp: 1\\nname: " NAME "\\nsteps:" step' + " step?" * (max(1, max_steps) - 1) + ' "\\n"')
    lines.append('CMP: " >= " | " <= " | " > " | " < "')
    lines.append("NAME: /[a-z][a-z0-9-]{1,23}/")
    lines.append("INT: /[1-9][0-9]{0,4}|0/")
    lines.append("NUMBER: /([1-9][0-9]{0,4}|0)(\\.[0-9]{1,3})?/")
    return "\n".join(lines) + "\n"

