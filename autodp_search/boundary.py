"""The privacy boundary: the only place that builds what a search agent sees.

An agent (an LLM, possibly curious, possibly steered by text planted in the data) may propose any
strategy and read everything the search tells it. What it is told is built here, from aggregates,
with a k-anonymity floor (``k``, the profile's floor, default 20) on everything derived from rows:

- **Columns.** A column present (not null) on fewer than k rows is not named: not in the column
  list, not in the profile, and strategies are linted without it (``visible_columns``). A JSON key
  that a single row carries is a row-level leak and a prompt-injection channel otherwise.
- **Counts.** Rows in, kept and dropped per step and per reason are coarsened (``Counts``): below k
  (0 included) they read ``<k``, within k of the total ``>total-k``, otherwise rounded to a
  multiple of k. "Did any row match?" gets no answer.
- **Outputs.** A candidate whose training data differs from an evaluated candidate's (or the
  unprocessed data's) by fewer than k rows is not evaluated: it is given that candidate's score,
  like any other score (``RowSets``). So one row, kept or dropped or rewritten, moves no score:
  deterministic evaluations (paired training seeds) carry no one-row signal, and the exact
  equality of two outputs is never announced.
- **Strategies.** In the agent path (never for people writing .dp files) a strategy may not
  compare a text column with a string literal (a binary search on row text), nor use parameters
  that match text (regular expressions, word lists, character sets): ``agent_diagnostics``
  rejects them with lint-style diagnostics, like any other error the agent can repair.
- **Feedback** is numbers about the held-out questions (``standard_feedback``); drop reasons are
  identifier codes (``reason_code``); the profile is k-anonymous by construction
  (``autodp_search.profile``). ``candidate_view`` assembles the records an agent sees from these.

What it does not do: it cannot stop an agent from *guessing*; it bounds what the search's answers
add to a guess. Rounding counts to multiples of k still moves a count when a strategy puts a row
across a rounding edge; the row-set rule above is what keeps that from moving a score.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from autodp_dsl import ir
from autodp_dsl.diagnostics import Diagnostic
from autodp_dsl.types import Type

from .agents.base import AgentContext, CandidateRecord, CandidateView, OpInfo, StepCount, StepView

__all__ = [
    "Counts",
    "agent_context",
    "reason_code",
    "standard_feedback",
    "step_counts",
    "RowSets",
    "TEXT_MATCHING_OK",
    "agent_diagnostics",
    "candidate_view",
    "coarse_drop_fraction",
    "row_hashes",
    "visible_columns",
]

# Free-text parameters that match no row text (what a step writes, an LLM instruction); every other
# parameter of type str or list[str] without fixed choices is taken as text-matching.
TEXT_MATCHING_OK = frozenset({"bullets", "placeholder", "goal", "context", "kinds"})
_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


# ---------------------------------------------------------------- drop reasons and feedback

_REASON_CODE = re.compile(r"^[a-z][a-z0-9_.\-]{0,39}$")
# The drop-reason templates of the standard operators, numbers replaced by N: each maps to a code.
_REASON_TEMPLATES = (
    (re.compile(r"^exact duplicate of row N$"), "exact-duplicate"),
    (re.compile(r"^near-duplicate of row N$"), "near-duplicate"),
    (re.compile(r"^rank N of N by .*, below the top N$"), "below-top-k"),
    (re.compile(r"^not in the random sample \(seed N, N of N\)$"), "not-in-random-sample"),
    (re.compile(r"^round N of the cluster of row N, beyond the N kept$"), "cluster-cap"),
)


def reason_code(reason: str | None, step_text: str, strategy_texts: frozenset[str] = frozenset()) -> str:
    """A drop reason as the agent may see it: ``step`` (the step itself), the text of a step of the
    strategy (written by the agent), a code for a known operator template, an identifier-like code,
    or ``other``. A reason that could carry row content is never forwarded."""
    if not reason or reason == step_text:
        return "step"
    r = reason.strip()
    if r in strategy_texts:
        return r
    norm = re.sub(r"\d+(\.\d+)?", "N", r)
    for pat, code in _REASON_TEMPLATES:
        if pat.fullmatch(norm):
            return code
    if _REASON_CODE.fullmatch(r):
        return r
    return "other"


def _step_texts(steps) -> set[str]:
    out: set[str] = set()
    for st in steps:
        out.add(ir.step_text(st))
        if isinstance(st, ir.Where):
            out |= _step_texts(st.steps)
    return out


def step_counts(strategy: ir.Strategy, steps) -> list[StepCount]:
    """A run's per-step accounting (the engine's step reports: ``step``, ``text``, ``rows_in``,
    ``rows_out``, ``dropped`` by reason) with every drop reason reduced to its ``reason_code``."""
    texts = frozenset(_step_texts(strategy.steps))
    out = []
    for s in steps:
        codes: dict[str, int] = {}
        for r, n in s.dropped.items():
            c = reason_code(r, s.text, texts)
            codes[c] = codes.get(c, 0) + int(n)
        out.append(StepCount(s.step, s.text, s.rows_in, s.rows_out, tuple(sorted(codes.items()))))
    return out


def standard_feedback(o) -> str:
    """An evaluation's outcome (``evaluators.EvalOutcome``) as the agent may read it: wins/ties/losses/
    failures and held-out losses, numbers about the held-out questions only. Never a judge's words
    (they can quote answers learned from the data), never a row count (those pass ``Counts``)."""
    if o.error:
        return f"evaluation failed ({o.error.split(':', 1)[0][:40]})"
    s = f"{o.wins} wins, {o.ties} ties, {o.losses} losses, {o.failures} failures over {o.n} held-out questions"
    if o.candidate_loss is not None and o.baseline_loss is not None:
        s += f"; held-out loss {o.candidate_loss:.3f} vs {o.baseline_loss:.3f} for r0 (lower is better)"
    return s  # no row count: the kept rows reach the agent coarsened, through the boundary



# ---------------------------------------------------------------- columns


def visible_columns(frame: pl.DataFrame, columns: dict[str, Type], k: int) -> tuple[dict[str, Type], list[str]]:
    """(the columns an agent may be told of, the hidden ones): a column with fewer than k non-null
    values is hidden, name and all."""
    shown: dict[str, Type] = {}
    hidden: list[str] = []
    for name, t in columns.items():
        present = frame.height - frame[name].null_count() if name in frame.columns else 0
        if present >= k:
            shown[name] = t
        else:
            hidden.append(name)
    return shown, hidden


# ---------------------------------------------------------------- counts


@dataclass(frozen=True)
class Counts:
    """Coarsened row counts of a frame of ``total`` rows, at floor ``k``."""

    k: int
    total: int

    def __call__(self, n: int | None) -> str:
        if n is None:
            return "n/a"
        k, total = self.k, self.total
        if n < k:
            return f"<{k}"
        if n > total - k:
            return f">{max(total - k, 0)}"
        return f"~{int(round(n / k)) * k}"


def candidate_view(r: CandidateRecord, counts: Counts, near_of: str | None = None) -> CandidateView:
    """What an agent may see of a candidate. ``near_of``: the candidate (or ``r0``) whose score this
    one was given because their outputs differ by fewer than k rows; it is not named."""
    steps = tuple(
        StepView(s.path, s.step, counts(s.rows_in), counts(s.rows_out), counts(s.dropped),
                 # a reason under k rows is left out, not shown as "<k": whether a reason
                 # appears at all would tell 0 rows from 1
                 tuple((code, counts(n)) for code, n in s.reasons if n >= counts.k))
        for s in r.steps
    )
    status, dup = r.status, r.duplicate_of
    if near_of is not None:  # scored like any other candidate: equality is not announced
        status, dup = "ok", None
    return CandidateView(
        round=r.round, cid=r.cid, dp_text=r.dp_text, status=status, key=r.key, delta=r.delta,
        win_rate=r.win_rate, ci_low=r.ci_low, ci_high=r.ci_high,
        rows_in=counts(r.rows_in) if r.rows_in is not None else None,
        rows_out=counts(r.rows_out) if r.rows_out is not None else None,
        steps=steps, feedback=r.feedback, duplicate_of=dup, errors=r.errors, origin=r.origin,
        replicates=r.replicates, placebo=r.placebo, placebo_low=r.placebo_low, placebo_high=r.placebo_high,
        beats_placebo=r.beats_placebo, improvement=r.improvement,
    )


def coarse_drop_fraction(rows_in: int | None, rows_out: int | None, k: int) -> float:
    """The share of rows a candidate dropped, from its kept count and its input's size both rounded
    to multiples of k (under k dropped: none, under k kept: all, both shown as ``<k``). The placebo rule, which the agent is told
    in numbers, is a function of this fraction alone, so no exact row count -- not the kept count,
    not the sample's size -- can be read back out of it: every pair of counts that round alike gives
    the same figure (an exact denominator made the interpolated figure move with each row)."""
    if not rows_in or rows_out is None or rows_in < k:
        return 0.0
    if rows_out < k:  # shown as "<k": 10 kept must not read unlike 11 (round(10/20) is 0, round(11/20) 1)
        return 1.0
    if rows_in - rows_out < k:
        return 0.0
    total = max(int(round(rows_in / k)), 1) * k
    kept = int(round(rows_out / k)) * k
    return min(max(1.0 - kept / total, 0.0), 1.0)


# ---------------------------------------------------------------- outputs that differ by fewer than k rows


def row_hashes(frame: pl.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """Sorted uint64 hashes of the rows (row id and the given columns) of what the evaluator trains on."""
    cols = [c for c in columns if c in frame.columns]
    if not cols or frame.height == 0:
        return np.zeros(0, dtype=np.uint64)
    # blake2b of each row's JSON line: stable across Polars versions, so hashes kept in the journal
    # still compare after an upgrade (Polars' own row hashes are not)
    body = frame.select(cols).write_ndjson()
    lines = (body if isinstance(body, str) else body.decode("utf-8")).splitlines()
    out = np.fromiter((int.from_bytes(hashlib.blake2b(line.encode("utf-8"), digest_size=8).digest(), "little")
                       for line in lines), dtype=np.uint64, count=len(lines))
    return np.sort(out)


@dataclass
class RowSets:
    """The row sets of the outputs scored so far (r0 first), to find a near-identical earlier one."""

    k: int
    sets: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, cid: str, hashes: np.ndarray) -> None:
        self.sets.setdefault(cid, hashes)

    def nearest(self, hashes: np.ndarray) -> str | None:
        """The earliest scored output that differs from ``hashes`` in fewer than k rows, or None."""
        best: tuple[int, str] | None = None
        for cid, other in self.sets.items():
            if abs(len(other) - len(hashes)) >= self.k:
                continue
            common = len(np.intersect1d(other, hashes, assume_unique=False))
            diff = (len(other) - common) + (len(hashes) - common)
            if diff < self.k and (best is None or diff < best[0]):
                best = (diff, cid)
        return best[1] if best else None

    @staticmethod
    def encode(hashes: np.ndarray) -> str:
        return hashes.astype("<u8").tobytes().hex()

    @staticmethod
    def decode(text: str) -> np.ndarray:
        return np.frombuffer(bytes.fromhex(text), dtype="<u8").astype(np.uint64)


# ---------------------------------------------------------------- the agent path's extra lint rules


def _text_matching_params(op: str, params, catalog: dict[str, dict[str, dict]]) -> list[str]:
    out = []
    declared = catalog.get(op, {})
    for name, value in params:
        info = declared.get(name)
        if info is None or name in TEXT_MATCHING_OK or "choices" in info:
            continue
        if info.get("type") in ("str", "list") and value not in ("", [], ()):
            out.append(name)
    return out


def _count_steps(steps) -> int:
    return sum(1 + (_count_steps(s.steps) if isinstance(s, ir.Where) else 0) for s in steps)


def _diag(code: str, message: str, span, hint: str) -> Diagnostic:
    return Diagnostic(code, message, span.line if span else 0, span.col if span else 0, hints=[hint])


def agent_diagnostics(strategy: ir.Strategy, catalog: dict[str, dict[str, dict]], max_steps: int) -> list[Diagnostic]:
    """Errors an agent's strategy has beyond the language's: too many steps, a text column
    compared with a string literal, a text-matching parameter. ``catalog``: op -> param -> info
    (``OpInfo.params`` by name)."""
    diags: list[Diagnostic] = []
    n = _count_steps(strategy.steps)
    if n > max_steps:
        diags.append(Diagnostic("agent-too-many-steps", f"the strategy has {n} steps; at most {max_steps} are allowed",
                                hints=["keep the steps that matter (--max-steps)"]))

    def exprs(steps):
        for st in steps:
            if isinstance(st, ir.Filter):
                yield st.predicate, st.span
            elif isinstance(st, ir.Assign):
                yield st.value, st.span
            elif isinstance(st, ir.Where):
                yield st.predicate, st.span
                yield from exprs(st.steps)
            elif isinstance(st, ir.OpStep):
                for a in st.args:
                    yield a, st.span
                bad = _text_matching_params(st.op, st.params, catalog)
                if bad:
                    diags.append(_diag("agent-text-matching", f"{st.op}: the parameter(s) {', '.join(bad)} match row "
                                       "text; agent strategies may not use them", st.span,
                                       "leave them at their defaults"))

    for e, span in exprs(strategy.steps):
        for sub in ir.walk_exprs(e):
            if isinstance(sub, ir.Call):
                bad = _text_matching_params(sub.op, sub.params, catalog)
                if bad:
                    diags.append(_diag("agent-text-matching", f"{sub.op}: the parameter(s) {', '.join(bad)} match "
                                       "row text; agent strategies may not use them", sub.span or span,
                                       "leave them at their defaults"))
            if isinstance(sub, ir.BinOp) and sub.op in _COMPARE:
                sides = (sub.left, sub.right)
                if any(isinstance(x, ir.Lit) and isinstance(x.value, str) for x in sides) and \
                        any(isinstance(x, ir.Col) for x in sides):
                    diags.append(_diag("agent-string-literal", "a column compared with a string literal; agent "
                                       "strategies may compare numbers and signals only", sub.span or span,
                                       "compare a signal instead, e.g. words(output) >= 5"))
    return diags


def param_catalog(catalog) -> dict[str, dict[str, dict]]:
    """``OpInfo`` tuple -> op -> param -> info, for ``agent_diagnostics``."""
    return {o.name: {p["name"]: p for p in o.params} for o in catalog}


# ---------------------------------------------------------------- the context


def agent_context(*, task: str, round: int, k: int, k_min: int, k_max: int, columns: dict[str, Type],
                  profile_text: str, catalog: tuple[OpInfo, ...], signal_stats, history, near: dict[str, str | None],
                  rows: int, k_floor: int, wave: int = 0, seed: int = 0, target_column: str | None = None,
                  rounds_left: int | None = None, notes=()) -> AgentContext:
    """Everything an agent is told, and the only way the search builds it. ``columns``: the visible
    ones (``visible_columns``); ``profile_text`` and ``signal_stats``: the k-anonymous profile of the
    data without its hidden columns; ``history``: the search's records, turned into views here
    (``near``: cid -> the candidate whose score it was given, or None); ``rows``: the rows searched,
    the total the counts are coarsened against; ``notes``: the loop's messages about the agent's own
    strategies (equal after canonicalisation), never about outputs."""
    counts = Counts(k_floor, rows)
    return AgentContext(
        task=task, round=round, wave=wave, k=k, k_min=k_min, k_max=k_max,
        columns=tuple((n, str(t)) for n, t in columns.items()), profile_text=profile_text, catalog=catalog,
        signal_stats=tuple(signal_stats), history=tuple(candidate_view(r, counts, near.get(r.cid)) for r in history),
        seed=seed, target_column=target_column, rounds_left=rounds_left, notes=tuple(notes), privacy_k=k_floor,
    )

