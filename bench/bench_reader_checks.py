"""What the jsonl reader's column checks cost (the checks that report coerced columns).

    python bench/bench_reader_checks.py [--rows 200000] [--dir /tmp]

Writes a 6-column jsonl (int id, two texts, a category, a float score, chat ``messages``) and times,
in one process (min of 5): the fast path's ``read_ndjson`` beside ``_read_unchanged`` (the proof
that no column was coerced), and the slow path (one quarantined line forces it) beside
``_changes`` (the notes of what reading changed).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path

import polars as pl

from autodp_dsl.io import _changes, _frame_from_records, _read_unchanged, read_data


def _best(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()
    rng = random.Random(0)
    path = Path(args.dir) / f"reader_checks_{args.rows}.jsonl"
    lines = [
        json.dumps({
            "id": i, "instruction": f"question {i} " + "word " * rng.randint(5, 40), "output": "answer " * rng.randint(5, 80),
            "source": rng.choice("abc"), "score": rng.random(), "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        })
        for i in range(args.rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    b = path.read_bytes()
    rows = pl.read_csv(io.BytesIO(b), has_header=False, separator="\x1f", quote_char=None, new_columns=["line"], schema={"line": pl.String})
    df = pl.read_ndjson(io.BytesIO(b), infer_schema_length=None)
    assert _read_unchanged(rows, df)
    t_read = _best(lambda: pl.read_ndjson(io.BytesIO(b), infer_schema_length=None))
    t_check = _best(lambda: _read_unchanged(rows, df))
    print(f"fast path ({path.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows): read_ndjson {t_read:.3f} s, _read_unchanged {t_check:.3f} s ({t_check / t_read:.0%})")
    slow = path.with_name(path.stem + "_slow.jsonl")
    slow.write_text("\n".join(lines[: args.rows // 4]) + '\n{"broken\n')
    recs = [json.loads(x) for x in lines[: args.rows // 4]]
    frame = _frame_from_records(recs)
    t_slow = _best(lambda: read_data(slow), 3)
    t_changes = _best(lambda: _changes(frame, recs))
    print(f"slow path ({args.rows // 4:,} rows): read_data {t_slow:.3f} s, _changes {t_changes:.3f} s ({t_changes / t_slow:.0%})")


if __name__ == "__main__":
    main()
