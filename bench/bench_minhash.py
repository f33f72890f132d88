#!/usr/bin/env python3
"""MinHash signatures: speed and LSH accuracy of ``dedup.minhash``, against a baseline in the same run.

    POLARS_MAX_THREADS=1 python bench/bench_minhash.py            # speed at 20,000 and 100,000 rows + accuracy
    python bench/bench_minhash.py --rows 20000 --pairs 300        # smaller

Speed: 256-value signatures (5-word shingles) of two corpora, each at every ``--rows`` size:
``sft`` (the reference generator's texts, ``gen_sft_noise.py --seed 0``: realistic lengths, a
median of about 200 shingles) and ``short`` (10 to 63 random words: 6 to 59 shingles, the case
densification works hardest on). The current signatures (optimal densification) and the
BASELINE (the rotation densification that ``dedup.minhash`` used up to version 1, copied below,
used here only for the comparison) run interleaved, ``--repeat`` times each; the best CPU and
wall times are printed with the ratio new / baseline. Both share the shingle hashing.

Accuracy: for pairs of m-word sets (1-word shingles, so a set is exactly its words) sharing o
words (Jaccard J = o / (2m - o), the achievable values nearest 0.5 ... 0.95), the share of pairs
that share an LSH bucket with 25 bands x 10 rows of 256 (the defaults for threshold 0.7), beside
the analytic ``1 - (1 - J^10)^25``: for the current signatures, the baseline and, when
``datasketch`` is importable (not a project dependency: ``pip install datasketch``), datasketch's
256-permutation ``MinHash`` with ``MinHashLSH``'s consecutive bands. ``z`` is (caught - theory) /
standard error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GEN = ROOT.parent / "shared" / "bench" / "gen_sft_noise.py"

from stdlib_ops.dedup import band_keys, minhash_signatures, one_permutation_bins, shingle_hashes  # noqa: E402
from stdlib_ops.testing import jaccard_cells, jaccard_pairs  # noqa: E402

K, NGRAM, SEED, BANDS, ROWS = 256, 5, 42, 25, 10


# ---------------------------------------------------------------- BASELINE (dedup.minhash version 1)

_ROTATE = 0x9E3779B9


def baseline_signatures(s: pl.Series, num_perm: int, ngram: int, lowercase: bool, seed: int) -> np.ndarray:
    """BASELINE, for comparison only: one-permutation hashing with rotation densification, as
    ``dedup.minhash`` computed it up to op version 1 (an empty bin takes the next filled bin's
    value to its right plus ``distance * 0x9E3779B9``)."""
    sig, filled = one_permutation_bins(s, num_perm, ngram, lowercase, seed)
    _baseline_densify(sig, filled)
    return sig


def _baseline_densify(sig: np.ndarray, filled: np.ndarray, chunk: int = 4096) -> None:
    n, k = sig.shape
    todo = np.flatnonzero(~filled.all(axis=1) & filled.any(axis=1))
    idx_t = np.int16 if 2 * k < 2**15 else np.int32
    cols = np.arange(k, dtype=idx_t)
    big = np.iinfo(idx_t).max
    for start in range(0, len(todo), chunk):
        rows = todo[start : start + chunk]
        f = filled[rows]
        both = np.empty((len(rows), 2 * k), dtype=idx_t)
        np.copyto(both[:, :k], np.where(f, cols, big))
        np.copyto(both[:, k:], np.where(f, cols + k, big))
        nxt = np.minimum.accumulate(both[:, ::-1], axis=1)[:, ::-1][:, :k].astype(np.int32)
        dist = (nxt - cols).astype(np.uint32)
        nxt[nxt >= k] -= k
        sig[rows] = np.take_along_axis(sig[rows], nxt, axis=1) + dist * np.uint32(_ROTATE)


def current_signatures(s: pl.Series, num_perm: int, ngram: int, lowercase: bool, seed: int) -> np.ndarray:
    return minhash_signatures(s, num_perm, ngram, lowercase, seed).to_numpy()


# ---------------------------------------------------------------- speed


def corpora(rows: int) -> dict[str, pl.Series]:
    out = {}
    if GEN.exists():
        sys.path.insert(0, str(GEN.parent))
        import gen_sft_noise

        out["sft"] = pl.Series("text", [r["text"] for r in gen_sft_noise.make(rows, 0)])
    else:
        print(f"(no {GEN}: the sft corpus is skipped)")
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 64, rows)
    words = rng.integers(0, 50_000, int(lengths.sum())).astype(str)
    ends = np.cumsum(lengths)
    out["short"] = pl.Series("text", [" ".join(words[e - n : e]) for e, n in zip(ends, lengths, strict=True)])
    return out


def timed(fn, s: pl.Series) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    fn(s, K, NGRAM, True, SEED)
    return time.process_time() - c, time.perf_counter() - w


def speed(sizes: list[int], repeat: int) -> None:
    print(f"\n## Speed: {K}-value signatures, {NGRAM}-word shingles (best of {repeat}, interleaved)")
    print(f"{'corpus':<7} {'rows':>7} {'shingles':>10} | {'baseline CPU s':>14} {'wall s':>7} | {'current CPU s':>13} {'wall s':>7} | {'CPU ratio':>9}")
    for n in sizes:
        for name, s in corpora(n).items():
            shingles = len(shingle_hashes(s, NGRAM, True, SEED)[0])
            best = {"base": [np.inf, np.inf], "cur": [np.inf, np.inf]}
            for _ in range(repeat):
                for key, fn in (("base", baseline_signatures), ("cur", current_signatures)):
                    c, w = timed(fn, s)
                    best[key] = [min(best[key][0], c), min(best[key][1], w)]
            (bc, bw), (cc, cw) = best["base"], best["cur"]
            print(f"{name:<7} {n:>7,} {shingles:>10,} | {bc:>14.3f} {bw:>7.3f} | {cc:>13.3f} {cw:>7.3f} | {cc / bc:>8.2f}x")


# ---------------------------------------------------------------- accuracy


def caught(sig: np.ndarray) -> float:
    keys = band_keys(sig, BANDS, ROWS)  # strided bands, as dedup.minhash
    return float((keys[0::2] == keys[1::2]).any(axis=1).mean())


def datasketch_caught(texts: list[str]) -> float:
    from datasketch import MinHash

    hv = np.stack([mh.hashvalues for mh in MinHash.bulk([[w.encode() for w in t.split()] for t in texts], num_perm=K)])
    band = hv[:, : BANDS * ROWS].reshape(len(texts), BANDS, ROWS)  # MinHashLSH: consecutive ranges
    return float((band[0::2] == band[1::2]).all(axis=2).any(axis=1).mean())


def accuracy(pairs: int) -> None:
    try:
        import datasketch  # noqa: F401

        have_ds = True
    except ImportError:
        have_ds = False
        print("(datasketch not importable: its column is left out)")
    print(f"\n## LSH accuracy: share of {pairs} pairs per cell that share a bucket ({BANDS} bands x {ROWS} rows of {K})")
    head = f"{'m':>4} {'J':>6} {'theory':>7} | {'current':>7} {'ratio':>6} {'z':>6} | {'baseline':>8} {'ratio':>6} {'z':>6}"
    print(head + (f" | {'datasketch':>10} {'ratio':>6} {'z':>6}" if have_ds else ""))
    rng = np.random.default_rng(11)
    for m, o, jac in jaccard_cells():
        texts = jaccard_pairs(rng, pairs, m, o)
        s = pl.Series(texts)
        want = 1 - (1 - jac**ROWS) ** BANDS
        se = max(np.sqrt(want * (1 - want) / pairs), 1e-12)
        cols = [caught(current_signatures(s, K, 1, True, SEED)), caught(baseline_signatures(s, K, 1, True, SEED))]
        if have_ds:
            cols.append(datasketch_caught(texts))
        line = f"{m:>4} {jac:>6.3f} {want:>7.3f}"
        for c in cols:
            line += f" | {c:>7.3f} {c / want:>6.2f} {(c - want) / se:>+6.1f}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    a = ap.parse_args()
    print(f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', '(unset)')}  load average {os.getloadavg()[0]:.1f}  cores {os.cpu_count()}")
    if not a.skip_speed:
        speed(a.rows, a.repeat)
    if not a.skip_accuracy:
        accuracy(a.pairs)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
