"""A digest of what the engine does with the curated strategies, to compare two checkouts.

    PYTHONPATH=/path/to/checkout python scripts/run_digest.py ROOT > digest.json

Runs every strategy in ``ROOT/strategies`` whose operators are all vectorised (no model) over
``ROOT/examples/medquad_sample.jsonl``, in memory and streaming, without a cache, and prints per
strategy: hashes of the kept rows and of the dropped ids with their reasons, the node keys and
each step's accounting. Two checkouts that behave the same print the same JSON (apart from paths
in error messages). Used to check that a refactoring changed no row, key or count.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import polars as pl

from autodp_dsl import compile_file, ir
from autodp_dsl.engine import Executor
from autodp_dsl.ops import registry


def _hash(frame: pl.DataFrame) -> str:
    return hashlib.sha256(frame.sort(frame.columns).write_csv().encode()).hexdigest()[:16]


def _steps(result) -> list:
    return [(s.step, s.kind, s.key, s.rows_in, s.rows_out, s.modified, s.added, s.dropped) for s in result.accounting.steps]


def _model_backed(strategy: ir.Strategy) -> bool:
    names = []
    for step in strategy.steps:
        for s in [step, *getattr(step, "steps", ())]:
            if isinstance(s, ir.OpStep):
                names.append(s.op)
            for e in (getattr(s, "predicate", None), getattr(s, "value", None), *getattr(s, "args", ())):
                if e is not None:
                    names += [c.op for c in ir.walk_exprs(e) if isinstance(c, ir.Call)]
    return any(str(registry().get(n).cost) != "vectorised" for n in names)


def digest(root: Path) -> dict:
    data = root / "examples/medquad_sample.jsonl"
    out: dict = {}
    spill = Path(tempfile.mkdtemp(prefix="autodp-digest-"))
    for dp in sorted((root / "strategies").glob("*.dp")):
        r = compile_file(dp)
        if not r.ok:
            out[dp.name] = "does not compile"
            continue
        if _model_backed(r.strategy):
            out[dp.name] = "model-backed: skipped"
            continue
        ex = Executor(cache_dir=None)
        try:
            batch = ex.run(r.strategy, data)
            streamed_to = spill / f"{dp.stem}.parquet"
            stream = ex.run_streaming(r.strategy, data, streamed_to)
        except Exception as e:  # a strategy that cannot run on this data says why, in the digest
            out[dp.name] = f"{type(e).__name__}: {str(e)[:200]}"
            continue
        acc = batch.accounting
        out[dp.name] = {
            "rows": _hash(batch.frame), "keys": batch.keys, "in": acc.rows_in, "kept": acc.kept, "dropped": acc.dropped,
            "quarantined": acc.quarantined, "generated": acc.generated, "steps": _steps(batch), "dropped_ids": _hash(acc.dropped_ids),
            "streaming": {"rows": _hash(pl.read_parquet(streamed_to)), "keys": stream.keys, "steps": _steps(stream),
                          "dropped_ids": _hash(stream.accounting.dropped_ids)},
        }
    return out


if __name__ == "__main__":
    print(json.dumps(digest(Path(sys.argv[1] if len(sys.argv) > 1 else ".")), indent=1, sort_keys=True, default=str))
