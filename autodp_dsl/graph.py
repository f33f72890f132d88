"""Connected components of an id graph: what ``dedup.minhash`` clusters with on one machine and
what the Ray engine (``engine/distributed.py``) joins buckets with across blocks. Here, in the
core, so that both use the one implementation (operators import the core, never the reverse)."""

from __future__ import annotations

from .lazy import lazy_import

np = lazy_import("numpy")  # loaded on first use: `autodp lint` needs no NumPy

__all__ = ["components"]


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the graph on ``range(n)`` with edges (a, b): each node's smallest
    node index, by min-label propagation with pointer jumping (NumPy, no per-row Python)."""
    label = np.arange(n, dtype=np.int64)
    while len(a):
        new = label.copy()
        np.minimum.at(new, a, label[b])
        np.minimum.at(new, b, label[a])
        while True:  # pointer jumping: follow labels to their own labels
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            break
        label = new
    return label
