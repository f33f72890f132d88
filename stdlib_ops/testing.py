"""Seeded data for checking the operators against their theory (the test suite and the benchmarks
share it, so both measure the same thing).

``jaccard_cells`` lists the Jaccard similarities two sets of m words can have near the targets;
``jaccard_pairs`` draws pairs of such sets as texts of distinct random words (1-word shingles, so a
text's shingle set is exactly its words).
"""

from __future__ import annotations

import numpy as np

__all__ = ["jaccard_cells", "jaccard_pairs"]


def jaccard_cells(sizes=(8, 12, 20, 40, 100, 200, 400), targets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95)) -> list[tuple[int, int, float]]:
    """(set size m, overlap o, Jaccard) with J = o / (2m - o) nearest each target in [0.5, 0.95]:
    only these are achievable for two m-sets."""
    out = []
    for m in sizes:
        seen = set()
        for target in targets:
            o = round(2 * m * target / (1 + target))
            jac = o / (2 * m - o)
            if 0.5 <= jac <= 0.95 and o not in seen:
                seen.add(o)
                out.append((m, o, jac))
    return out


def jaccard_pairs(rng: np.random.Generator, pairs: int, m: int, o: int) -> list[str]:
    """``2 * pairs`` texts: texts ``2i`` and ``2i + 1`` hold m distinct random words each, o of them
    shared (Jaccard o / (2m - o)). Words are drawn from ``rng`` (one draw per call, so a sequence
    of calls on one generator is reproducible); a collision between words would change the
    Jaccard, so one is an error."""
    words = rng.integers(0, 2**62, size=(pairs, 2 * m - o))
    if len(np.unique(words)) != words.size:
        raise ValueError("two drawn words are equal: the pairs would not have the stated Jaccard")
    texts = []
    for w in words.tolist():
        texts.append(" ".join(map(str, w[:m])))
        texts.append(" ".join(map(str, w[m - o :])))
    return texts
