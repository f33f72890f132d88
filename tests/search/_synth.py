"""Synthetic instruction/output rows for the search data tests (no real data needed)."""

from __future__ import annotations

import numpy as np
import polars as pl

_TOPICS = [
    "asthma",
    "gout",
    "anemia",
    "migraine",
    "eczema",
    "diabetes",
    "arthritis",
    "influenza",
    "psoriasis",
    "glaucoma",
]
_WORDS = (
    "the patient may have a condition that is often treated with rest and fluids and the doctor can "
    "recommend tests to find the cause of symptoms which usually improve over time in most people who "
    "follow the advice of their care team and take medicine as prescribed for several weeks"
).split()


def sentence(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(_WORDS, size=n)).capitalize() + "."


def good_answer(rng: np.random.Generator) -> str:
    return " ".join(sentence(rng, int(rng.integers(8, 20))) for _ in range(int(rng.integers(3, 8))))


def synth_frame(n: int = 400, seed: int = 0, bad_share: float = 0.15) -> tuple[pl.DataFrame, np.ndarray]:
    """(frame with __rid, instruction, input, output; boolean array of planted low-quality rows)."""
    rng = np.random.default_rng(seed)
    ins, outs, bad = [], [], []
    for i in range(n):
        topic = _TOPICS[i % len(_TOPICS)]
        q = f"What are the treatments for {topic} number {i} ?"
        kind = rng.random()
        if kind < bad_share / 3:
            o = q.replace(" ?", "?")  # heading only
            b = True
        elif kind < 2 * bad_share / 3:
            o = ("take rest and drink water " * 12).strip()  # repetitive
            b = True
        elif kind < bad_share:
            o = "Yes."  # very short
            b = True
        else:
            o = good_answer(rng)
            b = False
        ins.append(q)
        outs.append(o)
        bad.append(b)
    frame = pl.DataFrame({"instruction": ins, "input": [""] * n, "output": outs})
    frame = frame.with_row_index("__rid").with_columns(pl.col("__rid").cast(pl.UInt64))
    return frame, np.array(bad)
