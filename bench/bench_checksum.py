"""Checksum throughput for the cache (best of 7 on a 64 MB file of random bytes in the page cache):

    python bench/bench_checksum.py [--mb 64]

hashlib.sha256 (the reference), xxh3-128 (``xxhash``, the cache's choice) and BLAKE3 (``blake3``,
measured when it is installed: ``pip install blake3``) over bytes in memory, and the ways of
checksumming a file: read whole + hash, and ``autodp_dsl.checksum.file_digest`` (256 KiB chunks).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xxhash  # noqa: E402

from autodp_dsl.checksum import file_digest  # noqa: E402


def best(fn, n: int = 7) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.bin"
        path.write_bytes(os.urandom(args.mb * 1024 * 1024))
        data = path.read_bytes()
        hashes = {"hashlib.sha256": lambda: hashlib.sha256(data).digest(), "xxhash.xxh3_128": lambda: xxhash.xxh3_128(data).digest()}
        try:
            import blake3

            hashes["blake3 (1 thread)"] = lambda: blake3.blake3(data).digest()
        except ImportError:
            print("(blake3 not installed: pip install blake3 to include it)")
        gb = len(data) / 1e9
        print(f"{args.mb} MB in memory:")
        for name, fn in hashes.items():
            t = best(fn)
            print(f"  {name:<20} {t * 1000:7.1f} ms  {gb / t:6.1f} GB/s")
        print(f"{args.mb} MB file (page cache):")
        t_read = best(path.read_bytes)
        print(f"  {'read whole':<20} {t_read * 1000:7.1f} ms")
        print(f"  {'read whole + sha256':<20} {best(lambda: hashlib.sha256(path.read_bytes()).digest()) * 1000:7.1f} ms")
        print(f"  {'file_digest (xxh3)':<20} {best(lambda: file_digest(path)) * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
