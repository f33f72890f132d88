"""Rich rendering for the CLI: the run summary, per-step progress and the explain tree."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import ir
from ..diagnostics import has_errors, render_all
from ..errors import StrategyError
from .report import Explanation, RunResult

__all__ = ["load_strategy", "StrategyError", "summary_table", "explain_tree", "human_bytes", "when"]


def load_strategy(path: str | Path, columns=None, warn=None) -> ir.Strategy:
    """A ``.dp`` file (compiled against ``columns``), or IR JSON (``Strategy.to_json``).
    ``warn``: called with the rendered warnings of a strategy that compiles (a look-alike column
    name must not pass silently)."""
    from ..compiler import read_bounded
    from ..document import DEFAULT_LIMITS

    p = Path(path)
    if p.suffix.lower() == ".json":
        limit = DEFAULT_LIMITS.document_bytes
        try:
            raw = read_bounded(p, limit)
            if len(raw) > limit:
                raise ValueError(f"the file is more than the {limit} bytes a document may have")
            strategy = ir.Strategy.from_json(json.loads(raw.decode("utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:  # RecursionError: nested too deep
            why = type(e).__name__ if isinstance(e, RecursionError) else (e.strerror or e) if isinstance(e, OSError) else e
            raise StrategyError(f"{p}: not a strategy IR file ({why})") from e
        problem = _over_bounds(strategy, DEFAULT_LIMITS)
        if problem:
            raise StrategyError(f"{p}: limit-exceeded: {problem}")
        return strategy
    from ..compiler import compile_file

    r = compile_file(p, columns)
    if r.strategy is None or has_errors(r.diagnostics):
        raise StrategyError(render_all(r.diagnostics, r.source))
    if warn is not None and r.diagnostics:
        warn(render_all(r.diagnostics, r.source))
    return r.strategy


def _over_bounds(strategy: ir.Strategy, limits) -> str | None:
    """The bounds of a .dp document (steps in all, ``where:`` nesting, expression depth) for a
    strategy given as IR JSON, which skips the YAML layer that checks them; judged without recursion."""
    steps = 0
    todo: list[tuple[object, int]] = [(s, 0) for s in strategy.steps]
    exprs: list[tuple[object, int]] = []
    while todo:
        step, depth = todo.pop()
        steps += 1
        if steps > limits.steps:
            return f"more than {limits.steps} steps"
        if isinstance(step, ir.Where):
            if depth >= limits.where_depth:
                return f"`where:` blocks nest more than {limits.where_depth} deep"
            todo.extend((s, depth + 1) for s in step.steps)
        exprs.extend((e, 1) for e in _step_exprs(step))
    while exprs:
        e, depth = exprs.pop()
        if depth > limits.expr_depth:
            return f"an expression nests more than {limits.expr_depth} deep"
        children = {ir.ListLit: lambda x: x.items, ir.Call: lambda x: x.args, ir.BinOp: lambda x: (x.left, x.right),
                    ir.UnOp: lambda x: (x.operand,)}.get(type(e), lambda x: ())(e)
        exprs.extend((c, depth + 1) for c in children)
    return None


def _step_exprs(step) -> tuple:
    if isinstance(step, ir.OpStep):
        return step.args
    if isinstance(step, ir.Filter | ir.Where):
        return (step.predicate,)
    return (step.value,)  # Assign


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def summary_table(res: RunResult) -> Any:
    from rich.table import Table

    acc = res.accounting
    t = Table(title=f"{res.strategy}: {acc.rows_in:,} rows in", title_justify="left")
    for col, kw in (("step", {"justify": "right"}), ("", {}), ("in", {"justify": "right"}), ("out", {"justify": "right"}),
                    ("modified", {"justify": "right"}), ("dropped", {"justify": "right"}), ("cache", {}), ("time", {"justify": "right"})):
        t.add_column(col, **kw)
    for s in acc.steps:
        text = s.text if len(s.text) <= 60 else s.text[:57] + "..."
        cache = "hit" if s.cache == "hit" else ("stored" if s.persisted else "-")
        t.add_row(s.step, text, f"{s.rows_in:,}", f"{s.rows_out:,}", f"{s.modified:,}" if s.modified else "", f"{s.dropped_total:,}" if s.dropped_total else "", cache, f"{s.seconds:.2f}s")
    ok = "[green]balanced[/green]" if acc.balanced else "[red]NOT balanced[/red]"
    t.caption = (
        f"kept {acc.kept:,} + dropped {acc.dropped:,} + quarantined {acc.quarantined:,}"
        + (f" - generated {acc.generated:,}" if acc.generated else "")
        + f" = {acc.rows_in:,} rows in: {ok}; {res.cache_hits} of {len(acc.steps)} steps from the cache; {res.seconds:.2f} s"
    )
    t.caption_justify = "left"
    return t


def explain_tree(ex: Explanation) -> Any:
    from rich.tree import Tree

    data = f"{ex.data} ({ex.rows:,} rows, {ex.quarantined:,} quarantined)" if ex.data else "<no data: keys relative to an unbound root>"
    root = Tree(f"[bold]data[/bold] {data}  [dim]{ex.root_key[:12]}[/dim]")
    branches = {ex.root_key: root}
    for n in ex.nodes:
        who = ", ".join(f"{k}:{v}" for k, v in sorted(n.labels.items()))
        shared = f" [cyan]shared x{len(n.labels)}[/cyan]" if len(n.labels) > 1 else ""
        final = f" [magenta]final of {', '.join(n.finals)}[/magenta]" if n.finals else ""
        cache = {"hit": "[green]hit[/green]", "miss": "[yellow]miss[/yellow]"}.get(n.cache, "[dim]n/a[/dim]")
        label = (
            f"[dim]{n.key[:12]}[/dim] {n.text}  [dim]({n.kind}; {who})[/dim]{shared}{final}\n"
            f"materialise: {n.policy} ({n.policy_reason}); cache: {cache}"
        )
        for s in n.stats:
            sc = {"hit": "[green]hit[/green]", "miss": "[yellow]miss[/yellow]"}.get(s.source, s.source)
            label += f"\n  statistic {s.name} [dim]{s.key[:12]}[/dim]: {sc}"
        parent = branches.get(n.parent, root)
        branches[n.key] = parent.add(label)
    return root
