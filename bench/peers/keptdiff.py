"""Row-by-row comparison of the rows two tools kept from the same input, by planted junk kind.

Pure standard library, so the tests can check it without either tool installed. A row is named by
the input's ``id`` field; a tool's drop reasons (``{id: step}``) say *why* a row the other tool
kept is missing, when the tool can say (autodp's dropped file; Data-Juicer's tracer).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

UNKNOWN = "(not recorded)"


class KeptIdError(ValueError):
    """A tool's output names a row that is not in the input, or names one row twice."""


def read_ids(path: Path, key: str = "id") -> list:
    """The ``key`` field of every line of a jsonl file, in order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                row = json.loads(line)
                if key not in row:
                    raise KeptIdError(f"{path}:{n}: no {key!r} field")
                out.append(row[key])
    return out


@dataclass
class Side:
    """What one tool kept that the other did not, by kind, with the other tool's drop reasons."""

    rows: int = 0
    kinds: Counter = field(default_factory=Counter)  # kind -> rows
    reasons: dict = field(default_factory=dict)  # kind -> Counter(reason of the tool that dropped it)
    examples: dict = field(default_factory=dict)  # kind -> first few ids


@dataclass
class Comparison:
    names: tuple[str, str]
    rows: int
    kept: tuple[int, int]
    both: int
    only: tuple[Side, Side]  # only[0]: kept by names[0] alone (dropped by names[1]), and the reverse
    by_kind: dict  # kind -> {"rows", "kept_a", "kept_b", "both"}

    @property
    def agreeing(self) -> int:
        """Rows with the same decision in both tools (kept by both or dropped by both)."""
        return self.rows - self.only[0].rows - self.only[1].rows


def _kept_set(name: str, kept: Iterable, known: set) -> set:
    seen: set = set()
    for i in kept:
        if i in seen:
            raise KeptIdError(f"{name} kept row id {i!r} twice")
        if i not in known:
            raise KeptIdError(f"{name} kept row id {i!r}, which is not in the input")
        seen.add(i)
    return seen


def compare(
    rows: Sequence[tuple[object, str]],
    kept_a: Iterable,
    kept_b: Iterable,
    names: tuple[str, str] = ("a", "b"),
    dropped_a: Mapping | None = None,
    dropped_b: Mapping | None = None,
    examples: int = 5,
) -> Comparison:
    """Compare the kept ids of two tools over ``rows`` = [(id, kind), ...] (the input, in order).

    ``dropped_a``/``dropped_b`` map a dropped id to the step that dropped it in that tool; a row
    kept by one tool is explained by the other tool's reason, or ``UNKNOWN``.
    """
    ids = [i for i, _ in rows]
    known = set(ids)
    if len(known) != len(ids):
        raise KeptIdError("the input names a row id twice; ids must be unique to compare rows")
    a, b = _kept_set(names[0], kept_a, known), _kept_set(names[1], kept_b, known)
    dropped_a, dropped_b = dropped_a or {}, dropped_b or {}
    only = (Side(), Side())
    by_kind: dict = {}
    for i, kind in rows:
        ka, kb = i in a, i in b
        k = by_kind.setdefault(kind, {"rows": 0, "kept_a": 0, "kept_b": 0, "both": 0})
        k["rows"] += 1
        k["kept_a"] += ka
        k["kept_b"] += kb
        k["both"] += ka and kb
        if ka == kb:
            continue
        side, why = (only[0], dropped_b) if ka else (only[1], dropped_a)
        side.rows += 1
        side.kinds[kind] += 1
        side.reasons.setdefault(kind, Counter())[why.get(i, UNKNOWN)] += 1
        ex = side.examples.setdefault(kind, [])
        if len(ex) < examples:
            ex.append(i)
    return Comparison(names, len(rows), (len(a), len(b)), len(a & b), only, by_kind)


def render(c: Comparison) -> str:
    """Markdown: the per-kind table, then each disagreement group with the dropping tool's reasons."""
    a, b = c.names
    out = [
        f"{c.rows:,} rows; {a} kept {c.kept[0]:,}, {b} kept {c.kept[1]:,}, both {c.both:,}; "
        f"same decision on {c.agreeing:,} ({100 * c.agreeing / max(c.rows, 1):.2f}%)",
        "",
        f"| kind | rows | kept by {a} | kept by {b} | both | {a} only | {b} only |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in sorted(c.by_kind, key=lambda k: -c.by_kind[k]["rows"]):
        k = c.by_kind[kind]
        out.append(f"| {kind} | {k['rows']:,} | {k['kept_a']:,} | {k['kept_b']:,} | {k['both']:,} | "
                   f"{c.only[0].kinds[kind]:,} | {c.only[1].kinds[kind]:,} |")
    for side, keeper, dropper in ((c.only[0], a, b), (c.only[1], b, a)):
        out.append(f"\nkept by {keeper} only: {side.rows:,} rows (dropped by {dropper} at)")
        for kind, n in side.kinds.most_common():
            why = ", ".join(f"{r} {m}" for r, m in side.reasons[kind].most_common())
            out.append(f"- {kind} {n}: {why}; e.g. ids {side.examples[kind]}")
    return "\n".join(out)


def shingles(text: str, n: int = 5) -> set[int]:
    """Hashes of the n-word shingles of the lower-cased text, split on whitespace runs (a text of
    fewer than n words is one shingle)."""
    w = text.lower().split()
    return {hash(" ".join(w[i:i + n])) for i in range(max(len(w) - n + 1, 1))}


def nearest_earlier_jaccard(texts: Sequence[str], targets: Iterable[int], n: int = 5) -> dict[int, float]:
    """For each target position, the highest exact Jaccard similarity of its shingle set with the
    set of any earlier text (0.0 when none shares a shingle).

    A diagnostic for MinHash disagreements: a row one LSH links and the other does not, whose best
    match sits near the threshold, differs by chance, not by definition. One pass over the texts;
    only the targets' shingles are indexed.
    """
    targets = sorted(set(targets))
    index: dict[int, list[int]] = {}
    size = {}
    for t in targets:
        s = shingles(texts[t], n)
        size[t] = len(s)
        for h in s:
            index.setdefault(h, []).append(t)
    best = dict.fromkeys(targets, 0.0)
    last = targets[-1] if targets else -1
    for i in range(last):
        s = shingles(texts[i], n)
        overlap: Counter = Counter()
        for h in s:
            for t in index.get(h, ()):
                if t > i:
                    overlap[t] += 1
        for t, o in overlap.items():
            best[t] = max(best[t], o / (size[t] + len(s) - o))
    return best


def histogram(values: Iterable[float], edges: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9)) -> str:
    """`<0.5: 3, 0.5-0.6: 1, ...` for the bins that are not empty."""
    bins: Counter = Counter()
    for v in values:
        k = sum(v >= e for e in edges)
        bins[k] += 1
    names = [f"<{edges[0]}"] + [f"{a}-{b}" for a, b in pairwise(edges)] + [f">={edges[-1]}"]
    return ", ".join(f"{names[k]}: {bins[k]}" for k in sorted(bins))
