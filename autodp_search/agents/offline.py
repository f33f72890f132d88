"""The built-in proposer: an evolutionary search over operators and parameters, no LLM needed.

Round 1 seeds a population from the curated strategies (``strategies/*.dp`` that compile against
the data's columns) plus short strategies generated from the catalog. Later rounds keep the best
candidates by score minus r0 (elitist parents, rank-weighted) and make children by

- mutation: move a filter threshold (to a neighbouring quantile of the signal when the profile has
  them, else by a factor), change an operator parameter inside its declared range, add / remove /
  swap a step, toggle a deduplication step, gate a step on the processing-target score or ungate it;
- recombination: a prefix of one parent followed by a suffix of another.

Children that equal (after canonicalisation) anything tried before are discarded and redrawn, so
each round spends its budget on new strategies. Everything is drawn from ``random.Random`` seeded by
(seed, round): the same context gives the same proposals, which makes resumed searches identical.
"""

from __future__ import annotations

import random
from dataclasses import replace
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from autodp_dsl import ir
from autodp_dsl.types import BOOL, FLOAT

from ._ir_tools import (
    QUANTILE_NAMES,
    Template,
    build_templates,
    canonical_key,
    parse_strategy,
    random_param_value,
    text_columns,
    to_text,
)
from .base import AgentContext, CandidateRecord, OpInfo, Proposal, RepairRequest

__all__ = ["EvolutionaryAgent", "RandomAgent", "load_curated"]

_CMP = ("<", "<=", ">", ">=")


def load_curated(folder: str | Path | Traversable | None) -> list[tuple[str, str]]:
    """(name, text) of every ``*.dp`` file in ``folder`` (sorted by name)."""
    if folder is None:
        return []
    p = Path(folder) if isinstance(folder, str) else folder
    if not p.is_dir():
        return []
    found = sorted((f for f in p.iterdir() if f.name.endswith(".dp") and f.is_file()), key=lambda f: f.name)
    return [(f.name[: -len(".dp")], f.read_text(encoding="utf-8")) for f in found]


def _default_strategies_dir() -> Traversable:
    """The curated ``strategies/`` at the top of the repository, shipped inside the package as data
    (``autodp_search/strategies`` links to it): the same in a checkout and in an installed wheel."""
    here = files("autodp_search") / "strategies"
    if not here.is_dir():  # a broken install: say so rather than silently seeding from nothing
        raise FileNotFoundError(f"the curated strategies are missing from the installed package ({here})")
    return here


class _Base:
    name = "base"
    costs: tuple[str, ...] = ("vectorised", "model")

    def __init__(self, seed: int = 0, costs: tuple[str, ...] | None = None, max_steps: int = 8):
        self.seed = seed
        if costs is not None:
            self.costs = costs
        self.max_steps = max_steps

    def _rng(self, ctx: AgentContext, salt: str = "") -> random.Random:
        return random.Random(f"{self.name}|{self.seed}|{ctx.seed}|{ctx.round}|{ctx.wave}|{salt}")

    def _templates(self, ctx: AgentContext) -> list[Template]:
        return build_templates(ctx, self.costs)

    def _op(self, ctx: AgentContext, name: str) -> OpInfo | None:
        for o in ctx.catalog:
            if o.name == name:
                return o
        return None

    def _fresh_step(self, rng: random.Random, ctx: AgentContext, templates: list[Template], kinds=None) -> ir.Step | None:
        pool = [t for t in templates if kinds is None or t.kind in kinds]
        for _ in range(8):
            if not pool:
                return None
            t = rng.choice(pool)
            step = t.make(rng, ctx)
            if step is not None:
                if t.op.cost != "vectorised" and ctx.target_column:
                    step = _gate(step, ctx.target_column, 0.5)
                return step
        return None

    def _random_strategy(self, rng: random.Random, ctx: AgentContext, templates, n_steps: int) -> tuple:
        steps: list[ir.Step] = []
        for _ in range(n_steps * 3):
            if len(steps) >= n_steps:
                break
            st = self._fresh_step(rng, ctx, templates)
            if st is not None and st not in steps:
                steps.append(st)
        return tuple(_order(steps))

    def _known_keys(self, ctx: AgentContext) -> set[str]:
        return {c.key for c in ctx.history if c.key}

    def _accept(self, text: str, ctx: AgentContext, seen: set[str]) -> bool:
        k = canonical_key(text, ctx)
        if k is None or k in seen:
            return False
        seen.add(k)
        return True

    def _draw_fresh(self, rng: random.Random, ctx: AgentContext, templates, seen: set[str], out: list[Proposal], *,
                    tries: int, max_len: int, name: str, why: str, rationale: str, origin: str) -> None:
        """Append random strategies of 1..``max_len`` steps from the catalog to ``out`` until it
        holds ``ctx.k`` proposals or ``tries`` draws are spent; already tried ones are skipped."""
        for _ in range(tries):
            if len(out) >= ctx.k:
                break
            steps = self._random_strategy(rng, ctx, templates, rng.randint(1, max_len))
            if not steps:
                continue
            text = to_text(steps, f"{name}-{len(out) + 1}", why)
            if self._accept(text, ctx, seen):
                out.append(Proposal(text, rationale, origin))

    def repair(self, context: AgentContext, request: RepairRequest) -> Proposal | None:
        # The built-in agents write type-checked IR; a proposal that fails is given up.
        return None


def _order(steps: list[ir.Step]) -> list[ir.Step]:
    """Maps first, then filters, then global steps (stable within each group)."""

    def rank(s):
        if isinstance(s, ir.OpStep):
            return 0 if s.op.startswith(("clean.", "normalize", "fix", "strip")) else 2
        return 1

    return sorted(steps, key=rank)


def _gate(step: ir.Step, col: str, t: float) -> ir.Step:
    if isinstance(step, ir.Where):
        return step
    return ir.Where(ir.BinOp(">", ir.Col(col, FLOAT), ir.Lit(float(t), FLOAT), BOOL), (step,))


class RandomAgent(_Base):
    """Baseline: random strategies drawn from the catalog each round, ignoring the history."""

    name = "random"

    def propose(self, context: AgentContext) -> list[Proposal]:
        rng = self._rng(context)
        templates = self._templates(context)
        seen = self._known_keys(context)
        out: list[Proposal] = []
        self._draw_fresh(rng, context, templates, seen, out, tries=context.k * 20, max_len=4,
                         name=f"random-r{context.round}", why="random draw from the catalog",
                         rationale="random", origin="random")
        return out


class EvolutionaryAgent(_Base):
    """The default offline proposer (see the module docstring)."""

    name = "offline"

    def __init__(self, seed: int = 0, costs=None, strategies_dir: str | Path | None = "auto", elite: int = 3,
                 p_recombine: float = 0.3, p_explore: float = 0.15, max_steps: int = 8):
        super().__init__(seed, costs, max_steps)
        self.strategies_dir = _default_strategies_dir() if strategies_dir == "auto" else strategies_dir
        self.elite = elite
        self.p_recombine = p_recombine
        self.p_explore = p_explore

    # ------------------------------------------------------------------ round 1

    def _seeds(self, ctx: AgentContext, rng: random.Random, templates, seen: set[str]) -> list[Proposal]:
        out: list[Proposal] = []
        curated = []
        for name, text in load_curated(self.strategies_dir):
            s = parse_strategy(text, ctx)
            if s is None or not s.steps:
                continue
            if not self._uses_allowed(s, ctx):
                continue
            curated.append((name, s))
        rng.shuffle(curated)
        n_cur = min(len(curated), max(1, ctx.k // 2)) if curated else 0
        for name, s in curated[:n_cur]:
            text = to_text(s.steps, name, s.description or f"curated strategy {name}")
            if self._accept(text, ctx, seen):
                out.append(Proposal(text, f"curated strategy {name}", "seed:curated"))
        self._draw_fresh(rng, ctx, templates, seen, out, tries=ctx.k * 30, max_len=3, name="seed",
                         why="generated from the catalog", rationale="generated from the catalog", origin="seed:catalog")
        return out

    def _uses_allowed(self, s: ir.Strategy, ctx: AgentContext) -> bool:
        costs = {o.name: o.cost for o in ctx.catalog}

        def ok_steps(steps, gated):
            for st in steps:
                if isinstance(st, ir.Where):
                    if not ok_steps(st.steps, True):
                        return False
                    exprs = [st.predicate]
                elif isinstance(st, ir.Filter):
                    exprs = [st.predicate]
                elif isinstance(st, ir.Assign):
                    exprs = [st.value]
                else:
                    c = costs.get(st.op)
                    if c not in self.costs or (c != "vectorised" and not gated and ctx.target_column):
                        return False
                    exprs = list(st.args)
                for e in exprs:
                    for sub in ir.walk_exprs(e):
                        if isinstance(sub, ir.Call) and costs.get(sub.op) not in self.costs:
                            return False
            return True

        return ok_steps(s.steps, False)

    # ------------------------------------------------------------------ later rounds

    def propose(self, context: AgentContext) -> list[Proposal]:
        rng = self._rng(context)
        templates = self._templates(context)
        seen = self._known_keys(context)
        ranked = context.best(n=max(self.elite, 2) * 2)
        if not ranked:
            return self._seeds(context, rng, templates, seen)
        parents: list[tuple[CandidateRecord, ir.Strategy]] = []
        for c in ranked:
            s = parse_strategy(c.dp_text, context)
            if s is not None:
                parents.append((c, s))
        if not parents:
            return self._seeds(context, rng, templates, seen)
        elite = parents[: self.elite]
        weights = [1.0 / (i + 1) for i in range(len(elite))]
        out: list[Proposal] = []
        tries = 0
        while len(out) < context.k and tries < context.k * 40:
            tries += 1
            u = rng.random()
            if u < self.p_explore:
                steps = self._random_strategy(rng, context, templates, rng.randint(1, 3))
                origin, why = "explore", "fresh draw from the catalog"
            elif u < self.p_explore + self.p_recombine and len(elite) >= 2:
                (ca, a), (cb, b) = rng.sample(elite, 2)
                steps = self._recombine(rng, a.steps, b.steps)
                origin, why = "recombine", f"prefix of {ca.cid} + suffix of {cb.cid}"
            else:
                cp, p = rng.choices(elite, weights=weights, k=1)[0]
                steps, kind = self._mutate(rng, context, templates, p.steps)
                origin, why = f"mutate:{kind}", f"{kind} mutation of {cp.cid}"
            if not steps or len(steps) > self.max_steps:
                continue
            text = to_text(steps, f"r{context.round}-{len(out) + 1}", why)
            if self._accept(text, context, seen):
                out.append(Proposal(text, why, origin))
        return out

    @staticmethod
    def _recombine(rng: random.Random, a: tuple, b: tuple) -> tuple:
        i = rng.randint(1, len(a)) if a else 0
        j = rng.randint(0, len(b) - 1) if b else 0
        out: list[ir.Step] = []
        for s in (*a[:i], *b[j:]):
            if s not in out:
                out.append(s)
        return tuple(out)

    def _mutate(self, rng: random.Random, ctx: AgentContext, templates, steps: tuple) -> tuple[tuple, str]:
        kinds = ["threshold", "param", "add", "remove", "swap", "dedup"]
        if ctx.target_column:
            kinds.append("gate")
        weights = {"threshold": 4, "param": 2, "add": 2, "remove": 1.5, "swap": 0.7, "dedup": 1, "gate": 1}
        for _ in range(12):
            kind = rng.choices(kinds, weights=[weights[k] for k in kinds], k=1)[0]
            new = getattr(self, f"_m_{kind}")(rng, ctx, templates, list(steps))
            if new is not None and tuple(new) != tuple(steps) and new:
                return tuple(new), kind
        return tuple(steps), "none"

    # each mutation takes and returns a list of steps (None: not applicable)

    def _m_threshold(self, rng, ctx, templates, steps):
        sites = [(i, p) for i, s in enumerate(steps) for p in _lit_sites(s)]
        if not sites:
            return None
        i, path = rng.choice(sites)
        new = _rewrite_lit(steps[i], path, lambda call, lit: _move_threshold(rng, ctx, call, lit))
        steps[i] = new
        return steps

    def _m_param(self, rng, ctx, templates, steps):
        sites = []
        for i, s in enumerate(steps):
            inner = s.steps if isinstance(s, ir.Where) else (s,)
            for j, st in enumerate(inner):
                if isinstance(st, ir.OpStep):
                    op = self._op(ctx, st.op)
                    if op and op.params:
                        sites.append((i, j, st, op))
        if not sites:
            return None
        i, j, st, op = rng.choice(sites)
        p = rng.choice(op.params)
        cur = st.kwargs.get(p["name"], p.get("default"))
        v = random_param_value(p, rng, cur)
        if v is None or v == cur:
            return None
        params = dict(st.params)
        params[p["name"]] = tuple(v) if isinstance(v, list) else v
        new = replace(st, params=tuple(sorted(params.items())))
        if isinstance(steps[i], ir.Where):
            inner = list(steps[i].steps)
            inner[j] = new
            steps[i] = replace(steps[i], steps=tuple(inner))
        else:
            steps[i] = new
        return steps

    def _m_add(self, rng, ctx, templates, steps):
        st = self._fresh_step(rng, ctx, templates)
        if st is None or st in steps:
            return None
        if isinstance(st, ir.OpStep) and self._op(ctx, st.op) and self._op(ctx, st.op).kind == "map":
            pos = rng.randint(0, sum(1 for s in steps if isinstance(s, ir.OpStep) and self._is_map(ctx, s)))
        elif isinstance(st, ir.OpStep):
            pos = len(steps)
        else:
            pos = rng.randint(0, len(steps))
        steps.insert(pos, st)
        return steps

    def _is_map(self, ctx, s) -> bool:
        op = self._op(ctx, s.op)
        return bool(op and op.kind == "map")

    def _m_remove(self, rng, ctx, templates, steps):
        if len(steps) < 2:
            return None
        del steps[rng.randrange(len(steps))]
        return steps

    def _m_swap(self, rng, ctx, templates, steps):
        if len(steps) < 2:
            return None
        i = rng.randrange(len(steps) - 1)
        steps[i], steps[i + 1] = steps[i + 1], steps[i]
        return steps

    def _m_dedup(self, rng, ctx, templates, steps):
        dd = [i for i, s in enumerate(steps) if isinstance(s, ir.OpStep) and s.op.startswith("dedup.")]
        if dd and (rng.random() < 0.5 or len(steps) > 1):
            if len(steps) < 2:
                return None
            del steps[rng.choice(dd)]
            return steps
        pool = [t for t in templates if t.op.name.startswith("dedup.")]
        if not pool:
            return None
        st = rng.choice(pool).make(rng, ctx)
        if st is None or st in steps:
            return None
        steps.append(st)
        return steps

    def _m_gate(self, rng, ctx, templates, steps):
        col = ctx.target_column
        i = rng.randrange(len(steps))
        s = steps[i]
        if isinstance(s, ir.Where):
            if _is_target_gate(s, col) and rng.random() < 0.5:
                # move the gate threshold
                t = round(min(0.95, max(0.05, _gate_value(s) + rng.choice([-0.2, -0.1, 0.1, 0.2]))), 2)
                steps[i] = replace(s, predicate=ir.BinOp(">", ir.Col(col, FLOAT), ir.Lit(t, FLOAT), BOOL))
            elif len(s.steps) == 1 and isinstance(s.steps[0], ir.Filter):
                steps[i] = s.steps[0]  # ungate a cheap filter: apply it to every row
            else:
                return None
            return steps
        if isinstance(s, ir.OpStep):
            op = self._op(ctx, s.op)
            if op is None or op.kind == "global":
                return None
        steps[i] = _gate(s, col, rng.choice([0.3, 0.5, 0.7]))
        return steps


def _is_target_gate(w: ir.Where, col: str | None) -> bool:
    p = w.predicate
    return isinstance(p, ir.BinOp) and isinstance(p.left, ir.Col) and p.left.name == col and isinstance(p.right, ir.Lit)


def _gate_value(w: ir.Where) -> float:
    return float(w.predicate.right.value)


def _lit_sites(step: ir.Step, prefix: tuple = ()) -> list[tuple]:
    """Paths to numeric literals compared with a signal call, inside a filter (or a where's filters)."""
    out = []
    if isinstance(step, ir.Filter):
        for path, _call, _lit in _cmp_sites(step.predicate):
            out.append(prefix + path)
    elif isinstance(step, ir.Where):
        for j, inner in enumerate(step.steps):
            out += _lit_sites(inner, prefix + (("do", j),))
    return out


def _cmp_sites(e: ir.Expr, path: tuple = ()):
    if isinstance(e, ir.BinOp):
        if e.op in _CMP and isinstance(e.left, ir.Call) and isinstance(e.right, ir.Lit) \
                and isinstance(e.right.value, int | float) and not isinstance(e.right.value, bool):
            yield path, e.left, e.right
            return
        yield from _cmp_sites(e.left, path + ("left",))
        yield from _cmp_sites(e.right, path + ("right",))
    elif isinstance(e, ir.UnOp):
        yield from _cmp_sites(e.operand, path + ("operand",))


def _rewrite_lit(step: ir.Step, path: tuple, fn) -> ir.Step:
    if path and isinstance(path[0], tuple) and path[0][0] == "do":
        j = path[0][1]
        inner = list(step.steps)
        inner[j] = _rewrite_lit(inner[j], path[1:], fn)
        return replace(step, steps=tuple(inner))
    return replace(step, predicate=_rewrite_expr(step.predicate, path, fn))


def _rewrite_expr(e: ir.Expr, path: tuple, fn) -> ir.Expr:
    if not path:
        return replace(e, right=fn(e.left, e.right))
    head, rest = path[0], path[1:]
    return replace(e, **{head: _rewrite_expr(getattr(e, head), rest, fn)})


def _move_threshold(rng: random.Random, ctx: AgentContext, call: ir.Call, lit: ir.Lit) -> ir.Lit:
    v = lit.value
    is_int = isinstance(v, int) and not isinstance(v, bool)
    col = call.args[0].name if call.args and isinstance(call.args[0], ir.Col) else ""
    qs = ctx.quantiles(call.op, col)
    vals = sorted({qs[n] for n in QUANTILE_NAMES if n in qs})
    if len(vals) >= 2:
        # a neighbouring quantile, or halfway to it
        above = [x for x in vals if x > v]
        below = [x for x in vals if x < v]
        side = above if (not below or (above and rng.random() < 0.5)) else below
        target = min(side, key=lambda x: abs(x - v)) if side else v
        new = target if rng.random() < 0.6 else (v + target) / 2
    else:
        new = v * rng.choice([0.5, 0.75, 1.25, 1.5, 2.0]) if v else rng.choice([0.1, 1.0, 5.0])
    if is_int:
        new = int(round(new))
        if new == v:
            new = v + rng.choice([-1, 1]) * max(1, abs(v) // 5)
        return ir.Lit(new, lit.type)
    new = round(float(new), 4)
    return ir.Lit(new, lit.type)


def _text_cols(ctx):  # re-exported for tests
    return text_columns(ctx)
