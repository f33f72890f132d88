"""Planted junk for the evaluator's power benchmarks: six kinds, each a deterministic function of a seed.

Committed before any default-settings study (issue 11, "no tuning on the test"); the kinds, specs
and parameters below are frozen for the benchmark figures. One line of spec per kind:

* ``swapped``     -- the answer of another question of the same type (``category``; any other row when
  the type has no second row), so the text is fluent and on-topic in style but answers another question.
* ``truncated``   -- the answer cut to its first 20-50% of words (fraction uniform per row, at least one word).
* ``heading``     -- the answer replaced by the question restated as a section heading (a broken scrape).
* ``boilerplate`` -- a templated non-answer that names the question's subject and says nothing about it.
* ``html``        -- the answer's words kept but wrapped in page markup: tags, entities, navigation and footer.
* ``spam``        -- near-duplicate spam: one promotional paragraph with small per-row variations (a number,
  a word), the same for every junk row up to those variations.

:func:`plant` replaces the answers of ``round(fraction * len(rows))`` rows drawn with ``seed`` and
returns the new rows (copies; the input is not changed) and the sorted indices of the junk rows.
Rows need ``instruction`` and ``output``; ``category`` is used by ``swapped``. No dependency on
autodp_eval or the DSL.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["KINDS", "plant", "subject"]

Row = dict[str, Any]

_QUESTION_HEAD = re.compile(
    r"^(what (is|are)( \(are\))?( the)?|what causes|how (is|are|to)|who is at risk for|how many people are "
    r"affected by|what (are|is) the (symptoms|treatments?|outlook|stages|complications) (of|for)|"
    r"what research \(or clinical trials\) is being done for|is|are|do|does|can)\s+",
    re.IGNORECASE,
)


def subject(question: str) -> str:
    """The subject of a question: its words after the question stem, without the question mark."""
    q = question.strip().rstrip("?").strip()
    s = _QUESTION_HEAD.sub("", q).strip()
    return s or q


def _swapped(rows: Sequence[Row], i: int, rng: random.Random) -> str:
    cat = rows[i].get("category")
    same = [
        j
        for j, r in enumerate(rows)
        if j != i and r.get("category") == cat and r["output"] != rows[i]["output"]
    ]
    pool = same or [j for j in range(len(rows)) if j != i]
    return rows[rng.choice(pool)]["output"]


def _truncated(rows: Sequence[Row], i: int, rng: random.Random) -> str:
    words = rows[i]["output"].split()
    keep = max(1, round(rng.uniform(0.2, 0.5) * len(words)))
    return " ".join(words[:keep])


def _heading(rows: Sequence[Row], i: int, rng: random.Random) -> str:
    q = rows[i]["instruction"].strip().rstrip("?").strip()
    return rng.choice(["{}", "# {}", "{}:", "{} - Overview"]).format(q[:1].upper() + q[1:])


_BOILERPLATE = [
    "Thank you for your question about {s}. For more information about {s}, please talk to your doctor or "
    "another qualified health care provider.",
    "{s} is an important topic. This page is being updated; please check back later for more information "
    "on {s}.",
    "We are glad you asked about {s}. Information about {s} can be found in the resources listed on this site.",
]


def _boilerplate(rows: Sequence[Row], i: int, rng: random.Random) -> str:
    return rng.choice(_BOILERPLATE).format(s=subject(rows[i]["instruction"]))


def _html(rows: Sequence[Row], i: int, rng: random.Random) -> str:
    words = rows[i]["output"].split()
    parts = []
    for k in range(0, len(words), 12):
        chunk = " ".join(words[k : k + 12]).replace("&", "&amp;")
        tag = rng.choice(["p", "span", "li", "div"])
        parts.append(f'<{tag} class="c{rng.randrange(10)}">{chunk}&nbsp;</{tag}>')
    nav = '<nav><a href="/">Home</a> | <a href="/a-z">A-Z</a> | <a href="/share">Share</a></nav>'
    foot = '<footer><p>&copy; Health Library &middot; <a href="/privacy">Privacy</a></p></footer>'
    return f'<div id="main">{nav}<br/>' + "".join(parts) + f"</div>{foot}"


def _spam(rows: Sequence[Row], i: int, rng: random.Random) -> str:
    pct = rng.choice([30, 40, 50, 60, 70])
    word = rng.choice(["cheap", "discount", "best", "trusted", "fast"])
    return (
        f"Looking for {word} medicines? Order online today and save {pct}% on your first order! Free shipping, "
        f"no prescription needed, 24/7 support. Visit www.example-pharmacy.com now - offer code HEALTH{rng.randrange(100)}."
    )


KINDS: dict[str, Callable[[Sequence[Row], int, random.Random], str]] = {
    "swapped": _swapped,
    "truncated": _truncated,
    "heading": _heading,
    "boilerplate": _boilerplate,
    "html": _html,
    "spam": _spam,
}


def plant(
    rows: Sequence[Row], kind: str, fraction: float = 0.3, seed: int = 0
) -> tuple[list[Row], list[int]]:
    """Copies of ``rows`` with the answers of ``round(fraction * len(rows))`` rows (drawn with ``seed``)
    replaced by junk of ``kind``; returns ``(rows, sorted junk indices)``. Same arguments, same output."""
    if kind not in KINDS:
        raise ValueError(f"unknown junk kind {kind!r}; kinds: {', '.join(KINDS)}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    rng = random.Random(f"junk:{kind}:{seed}")
    chosen = sorted(rng.sample(range(len(rows)), round(fraction * len(rows))))
    out = [dict(r) for r in rows]
    make = KINDS[kind]
    for i in chosen:
        out[i]["output"] = make(rows, i, rng)  # from the original rows: a swap never copies junk
    return out, chosen
