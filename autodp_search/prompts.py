"""Prompts for LLM agents, built only from an ``AgentContext`` (aggregate information).

- ``catalog_from_registry``: the operator catalog (``OpInfo``) generated from the registry.
- ``catalog_text``: the catalog as prompt text (signatures, parameter ranges, one-line docs).
- ``history_text``: every earlier candidate side by side, score minus r0, best last (the
  group-relative feedback of the search).
- ``search_messages`` / ``repair_messages``: the chat messages of the LLM agent.
- ``automl_messages``: the AutoML-agent-style baseline: absolute scores only, no group comparison,
  no catalog reasoning.

Nothing here reads data; the privacy property of the search rests on that.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from .agents.base import AgentContext, CandidateView, OpInfo, RepairRequest, rank_key
from .agents.tokens import TokenBudget

__all__ = [
    "PROMPT_VERSION",
    "automl_messages",
    "catalog_from_registry",
    "catalog_text",
    "history_text",
    "repair_messages",
    "search_messages",
]

PROMPT_VERSION = 2

DEFAULT_TASK = (
    "Find a data-processing strategy for an instruction-tuning data set (question -> answer pairs) "
    "such that a model fine-tuned on the processed data answers held-out questions better than a model "
    "fine-tuned on the unprocessed data. Strategies clean, filter, deduplicate, select or rewrite rows."
)

LANGUAGE_GUIDE = """\
A strategy is a YAML document (.dp):
  dp: 1
  name: short-name
  description: one line
  steps:
    - clean.whitespace(output)                 # a step operator on columns
    - filter: words(output) >= 5 and chars(instruction) <= 400   # keep rows where the predicate holds
    - dedup.exact(instruction, output)         # global operators compare rows
    - where: lowq > 0.5                        # gate: run the inner steps only on these rows
      do:
        - filter: words(output) >= 20
Expressions: columns, literals, signal calls `name(args, key=value)`, arithmetic + - * /,
comparisons == != < <= > >=, and/or/not. Parameters are keyword arguments with literal values,
inside the documented ranges. Operators of cost `llm` or `model` are slow: gate them with `where:`."""


def _param_info(name: str, f) -> dict[str, Any]:
    ann = f.annotation
    info: dict[str, Any] = {"name": name, "type": getattr(ann, "__name__", str(ann))}
    if typing.get_origin(ann) is typing.Literal:
        info["type"] = "choice"
        info["choices"] = list(typing.get_args(ann))
    if not f.is_required():
        d = f.default
        info["default"] = list(d) if isinstance(d, tuple) else d
    for m in f.metadata:
        for bound in ("ge", "le", "gt", "lt"):
            v = getattr(m, bound, None)
            if v is not None:
                info[bound] = v
    return info


def catalog_from_registry(reg=None) -> tuple[OpInfo, ...]:
    """Every operator of the registry as ``OpInfo`` (sorted by name)."""
    if reg is None:
        from autodp_dsl import registry

        reg = registry()
    out = []
    for op in reg:
        args = tuple(
            {"name": a.name, "type": str(a.type), "column": a.column, "variadic": a.variadic} for a in op.args
        )
        params = tuple(_param_info(n, f) for n, f in op.Params.model_fields.items())
        out.append(
            OpInfo(
                name=op.name,
                kind=str(op.kind),
                family=str(op.family),
                cost=str(op.cost),
                signature=op.signature(),
                summary=op.summary(),
                args=args,
                params=params,
                returns=str(op.returns) if str(op.kind) == "signal" else "",
            )
        )
    return tuple(out)


def _range_text(p: dict[str, Any]) -> str:
    parts = []
    if "choices" in p:
        parts.append("one of " + ", ".join(json.dumps(c) for c in p["choices"]))
    lo = ("≥", p["ge"]) if "ge" in p else ((">", p["gt"]) if "gt" in p else None)
    hi = ("≤", p["le"]) if "le" in p else (("<", p["lt"]) if "lt" in p else None)
    if lo:
        parts.append(f"{lo[0]}{lo[1]}")
    if hi:
        parts.append(f"{hi[0]}{hi[1]}")
    return " ".join(parts)


def catalog_text(catalog: tuple[OpInfo, ...]) -> str:
    lines = []
    for kind in ("signal", "map", "filter", "global", "generate"):
        ops = [o for o in catalog if o.kind == kind]
        if not ops:
            continue
        title = {"signal": "Signals (use inside filter/where expressions and assignments)",
                 "map": "Map steps (rewrite columns in place)", "filter": "Filter steps (drop rows)",
                 "global": "Global steps (compare rows: dedup, selection; not inside where-blocks)",
                 "generate": "Generation steps (may add rows)"}[kind]
        lines.append(f"## {title}")
        for o in ops:
            lines.append(f"- {o.signature}  [{o.family}, cost {o.cost}] {o.summary}")
            ranged = [f"{p['name']} {_range_text(p)}" for p in o.params if _range_text(p)]
            if ranged:
                lines.append("    ranges: " + "; ".join(ranged))
    return "\n".join(lines)


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _record_text(c: CandidateView, relative: bool = True) -> str:
    head = f"### {c.cid} (round {c.round}, {c.status}"
    if c.status == "ok":
        if relative:
            head += (f", score - r0 = {_fmt(c.delta, True)}, win rate {_fmt(c.win_rate)} [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]"
                     f" over {c.replicates} replicate{'s' if c.replicates != 1 else ''}")
        else:
            head += f", score {_fmt(c.win_rate)}"
    if c.duplicate_of:
        head += f", same as {c.duplicate_of} after canonicalisation"
    head += ")"
    out = [head, "```yaml", c.dp_text.strip(), "```"]
    if c.steps and relative:
        out.append(f"rows: {c.rows_in} in -> {c.rows_out} kept")
        for s in c.steps:
            reasons = ", ".join(f"{r}: {n}" for r, n in s.reasons) if s.reasons else ""
            out.append(f"  step {s.path} `{s.step}`: {s.rows_in} -> {s.rows_out} (dropped {s.dropped}{'; ' + reasons if reasons else ''})")
    if c.placebo is not None and relative and c.status == "ok":
        out.append(_placebo_text(c))
    if c.feedback and relative:
        out.append(f"judge: {c.feedback}")
    if c.errors:
        out.append("errors: " + "; ".join(c.errors[:5]))
    return "\n".join(out)


def _placebo_text(c: CandidateView) -> str:
    """The placebo rule in numbers: what as many rows dropped at random score, and the verdict."""
    verdict = {True: "beats it", False: "does worse than it", None: "cannot be told apart from it"}[c.beats_placebo]
    return (f"placebo (as many rows dropped at random): win rate {_fmt(c.placebo)} [{_fmt(c.placebo_low)}, "
            f"{_fmt(c.placebo_high)}]; this candidate {verdict}; improvement on the data: "
            f"{'yes' if c.improvement else 'no'}")


def _one_line(c: CandidateView) -> str:
    """A candidate in one line (the summarised history): its score and the names of its steps."""
    head = (f"- {c.cid}: score - r0 = {_fmt(c.delta, True)} ({c.replicates} rep."
            + ("" if c.placebo is None else f", placebo {_fmt(c.placebo - 0.5, True)}"
               + (", improvement" if c.improvement else "")) + ")") if c.status == "ok" else f"- {c.cid}: {c.status}"
    steps = "; ".join(s.step for s in c.steps) if c.steps else ""
    return head + (f" | {steps[:160]}" if steps else "")


def history_text(ctx: AgentContext, limit: int = 24) -> str:
    """Candidates side by side, score minus r0, worst first and best last; rejected ones first.

    ``limit``: candidates shown in full: the best, then the most recent (the latest rounds, the
    stronger first within a round); the others, the oldest rounds first, are summarised in one
    line each. The order and the best are the search's (``rank_key``)."""
    if not ctx.history:
        if ctx.round <= 1:
            return "No candidates yet: this is the first round."
        return (f"No candidates yet, though this is round {ctx.round}: the earlier rounds gave no strategy "
                "that could be run. Follow the language and the catalog exactly.")
    scored = sorted((c for c in ctx.history if c.status == "ok" and c.delta is not None), key=rank_key, reverse=True)
    other = [c for c in ctx.history if not (c.status == "ok" and c.delta is not None)][-8:]
    keep: set[str] = set()
    if limit > 0 and scored:
        recent = sorted(scored[:-1], key=lambda c: (-c.round, rank_key(c)))
        keep = {scored[-1].cid, *(c.cid for c in recent[: limit - 1])}
    full = [c for c in scored if c.cid in keep]
    short = [c for c in scored if c.cid not in keep]
    parts = [
        "r0 is the score of the model fine-tuned on the unprocessed data; a candidate's score is its "
        "judged win rate against that model (0.5 = as good as r0). Positive `score - r0` is better. "
        f"Row counts are rounded (<{ctx.privacy_k}: fewer than {ctx.privacy_k} rows, ~{7 * ctx.privacy_k}: "
        f"about {7 * ctx.privacy_k}). A score is the mean over its replicates (independent trainings; more go "
        "to the candidates close to the best) with its 95% interval. Dropping rows at random changes the score "
        "by itself (the placebo): a candidate improves on the data only when its interval lies above 0.5 and it "
        "beats the placebo of its own size.",
    ]
    if short:
        parts.append(f"{len(short)} older or weaker candidates, summarised:\n" + "\n".join(_one_line(c) for c in short))
    parts += [_record_text(c) if limit > 0 else _one_line(c) for c in other]
    parts += [_record_text(c) for c in full]
    if scored:
        best = scored[-1]
        parts.append(f"Best so far: {best.cid} with score - r0 = {_fmt(best.delta, True)}.")
    return "\n\n".join(parts)


def _stats_text(ctx: AgentContext) -> str:
    if not ctx.signal_stats:
        return ""
    lines = ["Quantiles of signals over the rows (aggregates):"]
    for sig, col, qs in ctx.signal_stats:
        lines.append(f"- {sig}({col}): " + ", ".join(f"{q}={v:g}" for q, v in qs))
    return "\n".join(lines)


def _columns_text(ctx: AgentContext) -> str:
    cols = ", ".join(f"{n}: {t}" for n, t in ctx.columns)
    s = f"Columns: {cols}."
    if ctx.target_column:
        s += (f" `{ctx.target_column}` (float in [0, 1]) is the processing-target score: a classifier's "
              "estimate that a row is low quality; gate expensive operators with "
              f"`where: {ctx.target_column} > 0.5`.")
    return s


SYSTEM = (
    "You are a data-processing expert. You design cleaning strategies for fine-tuning data without "
    "ever seeing the data: you get an aggregate profile, an operator catalog and the results of "
    "earlier strategies. Answer with JSON only."
)


DP_REPLY = ("Reply with one strategy as a .dp YAML document (dp: 1, name, steps), nothing else; steps "
            "as in the language guide.")
JSON_REPLY = ('Reply with a JSON object {"strategies": [{"rationale": "...", "strategy": {"dp": 1, "name": "...", '
              '"description": "...", "steps": [...]}}]} where each strategy follows the .dp schema.')


def search_messages(ctx: AgentContext, max_chars: int | None = None, events: list[str] | None = None,
                    reply: str = JSON_REPLY, tokens: TokenBudget | None = None) -> list[dict[str, str]]:
    """The proposal request. ``max_chars`` (characters) and ``tokens`` (the model's context, see
    ``agents.tokens``): the prompt's size limits; when the full history would not fit, fewer
    candidates are shown in full (the oldest rounds are summarised first, one line each; the best
    stays in full longest), then none; what was done is appended to ``events``. ``reply``: how to
    answer (``JSON_REPLY``, or ``DP_REPLY`` when decoding is constrained to one .dp document)."""

    def over(msgs) -> list[str]:
        why = []
        if max_chars is not None and _size(msgs) > max_chars:
            why.append(f"{max_chars} characters (--llm-max-prompt-chars)")
        if tokens is not None and (n := tokens.count(msgs)) > tokens.prompt_limit:
            why.append(f"{tokens.describe()}: it took {n}")
        return why

    msgs = _search_messages(ctx, 24, reply)
    first = over(msgs)
    if not first:
        return msgs
    for limit in (12, 6, 3, 1, 0):
        msgs = _search_messages(ctx, limit, reply)
        still = over(msgs)
        if not still:
            break
    if events is not None:
        size = f"{_size(msgs)} characters" + (f", {tokens.count(msgs)} tokens" if tokens is not None else "")
        events.append(f"round {ctx.round}: the prompt was over " + " and ".join(first)
                      + f"; the history was summarised, oldest rounds first ({limit} candidate(s) in full: the best, then the latest), "
                      f"now {size}" + (f" (still over {' and '.join(still)}: the catalog and profile alone do not fit)"
                                       if still else ""))
    return msgs


def _size(msgs: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in msgs)


def _search_messages(ctx: AgentContext, limit: int, reply: str = JSON_REPLY) -> list[dict[str, str]]:
    k = ctx.k
    user = "\n\n".join(
        x
        for x in [
            f"# Task\n{ctx.task or DEFAULT_TASK}",
            f"# Language\n{LANGUAGE_GUIDE}",
            f"# Operator catalog\n{catalog_text(ctx.catalog)}",
            f"# Data\n{_columns_text(ctx)}\n\n{ctx.profile_text}\n\n{_stats_text(ctx)}",
            f"# Results so far (round {ctx.round})\n{history_text(ctx, limit)}",
            ("# Notes\n" + "\n".join(f"- {n}" for n in ctx.notes)) if ctx.notes else "",
            (f"# Refill\n{k} candidate(s) of this round changed fewer than {ctx.privacy_k} rows compared with an earlier "
             "candidate or the unprocessed data, so they were scored like it and taught nothing new: replace "
             "them with different strategies.")
            if ctx.wave else "",
            f"# Your turn\nPropose between {ctx.k_min} and {ctx.k_max} new strategies (suggested: {k}). "
            "Compare the candidates side by side: keep what the best ones share, drop what the worst ones "
            "share, and try something new. Do not repeat a strategy already tried. " + reply,
        ]
        if x
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def repair_messages(ctx: AgentContext, req: RepairRequest, catalog: bool = True, reply: str | None = None) -> list[dict[str, str]]:
    shown = [{k: d.get(k) for k in ("code", "message", "line", "column", "hints") if d.get(k) not in (None, [])}
             for d in req.diagnostics[:8]]
    diags = json.dumps(shown, indent=1, ensure_ascii=False)
    cat = (f"# Operator catalog\n{catalog_text(ctx.catalog)}" if catalog
           else "Available operators: " + ", ".join(o.name for o in ctx.catalog))
    user = (
        f"# Language\n{LANGUAGE_GUIDE}\n\n{cat}\n\n"
        f"# Data\n{_columns_text(ctx)}\n\n"
        f"# This strategy does not compile (repair attempt {req.attempt})\n```yaml\n{req.dp_text.strip()}\n```\n\n"
        f"# Diagnostics\n{diags}\n\n"
        + (reply or 'Reply with a JSON object {"strategies": [{"rationale": "...", "strategy": {...}}]} holding one '
           "corrected strategy.")
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def automl_messages(ctx: AgentContext, reply: str | None = None) -> list[dict[str, str]]:
    """The AutoML-agent-style baseline: a plain task statement, the step-operator names, and the
    absolute score of each earlier strategy, one after another (no r0, no side-by-side comparison,
    no row counts, no catalog documentation)."""
    names = ", ".join(o.name for o in ctx.catalog)
    hist = []
    for c in ctx.history:
        if c.status == "ok":
            hist.append(f"Strategy {c.cid}: score {_fmt(c.win_rate)}\n```yaml\n{c.dp_text.strip()}\n```")
    user = "\n\n".join(
        x
        for x in [
            f"Task: {ctx.task or DEFAULT_TASK}",
            f"{_columns_text(ctx)} Available operators: {names}.",
            f"Write YAML .dp strategies like:\n{LANGUAGE_GUIDE}",
            ("Previous attempts:\n" + "\n\n".join(hist)) if hist else "",
            reply or (f"Propose {ctx.k} strategies as JSON: "
                      '{"strategies": [{"rationale": "...", "strategy": {"dp": 1, "name": "...", "steps": [...]}}]}'),
        ]
        if x
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
