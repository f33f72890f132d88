"""Out-of-core runs give the same rows, ids and accounting as in-memory runs."""

from __future__ import annotations

import json

import polars as pl

from autodp_dsl.cli import main
from autodp_dsl.engine import Executor

from .helpers import call, col, filt, make_registry, step, strategy
from .test_io import _broken_bytes

REG = make_registry()

S = strategy(
    "stream",
    step("t.strip", col("output")),
    step("t.reasoned", col("output")),
    filt(">=", call("t.len", col("output")), 6),
    step("t.upper", col("instruction")),
    step("t.first", col("output")),
)


def _data(tmp_path):
    b, _ = _broken_bytes()
    rows = [json.dumps({"instruction": f"q{i % 9}", "output": f" answer {i % 13} {'spam' if i % 17 == 0 else ''} {'junk' if i % 19 == 0 else ''} "}) for i in range(400)]
    p = tmp_path / "d.jsonl"
    p.write_bytes(b + ("\n".join(rows) + "\n").encode())
    return p


def test_streaming_equals_in_memory(tmp_path):
    p = _data(tmp_path)
    ex = Executor(registry=REG, max_row_bytes=4096)
    mem = ex.run(S, p)
    res = ex.run_streaming(S, p, tmp_path / "out.parquet", chunk_bytes=2048)  # many chunks, lines cut at boundaries
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.equals(mem.frame) and res.ids.equals(mem.ids)
    assert res.keys == mem.keys and res.fingerprint == mem.fingerprint
    assert res.quarantine.sort("rid").equals(mem.quarantine.sort("rid"))
    assert res.accounting.dropped_ids.sort("rid").equals(mem.accounting.dropped_ids.sort("rid"))
    for a, b in zip(mem.accounting.steps, res.accounting.steps, strict=True):
        assert (a.rows_in, a.rows_out, a.modified, a.dropped) == (b.rows_in, b.rows_out, b.modified, b.dropped)
    assert res.accounting.balanced


def test_streaming_parquet_in_jsonl_out_and_cli(tmp_path):
    p = _data(tmp_path)
    ex = Executor(registry=REG, max_row_bytes=4096)
    mem = ex.run(S, p)
    pq = tmp_path / "d.parquet"
    pl.DataFrame([json.loads(x) for x in p.read_text(errors="replace").splitlines()[-400:]]).write_parquet(pq)
    res = ex.run_streaming(S, pq, tmp_path / "out.jsonl")
    assert res.accounting.balanced and res.accounting.rows_in == 400
    assert pl.read_ndjson(tmp_path / "out.jsonl").height == res.accounting.kept
    # the CLI
    dp = tmp_path / "s.dp"
    dp.write_text("dp: 1\nname: s\nsteps:\n  - filter: chars(output) >= 10\n  - dedup.exact(output)\n")
    rc = main(["run", str(dp), str(p), "-o", str(tmp_path / "cli.parquet"), "--streaming", "-q", "--report", str(tmp_path / "r.json"), "--max-row-bytes", "4096"])
    assert rc == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["accounting"]["balanced"] and pl.read_parquet(tmp_path / "cli.parquet").height == rep["accounting"]["kept"]
    assert mem.accounting.rows_in == rep["accounting"]["rows_in"]


def test_streaming_generate_gets_fresh_ids(tmp_path):
    p = _data(tmp_path)
    s = strategy("g", step("t.echo", col("output")), filt(">=", call("t.len", col("output")), 3))
    ex = Executor(registry=REG, max_row_bytes=4096)
    mem = ex.run(s, p)
    res = ex.run_streaming(s, p, tmp_path / "g.parquet", chunk_bytes=4096)
    assert res.ids.sort().equals(mem.ids.sort()) and res.accounting.generated == mem.accounting.generated > 0
    assert res.accounting.balanced


def test_cli_mode_flags(tmp_path, capsys):
    p = _data(tmp_path)
    dp = tmp_path / "s.dp"
    dp.write_text("dp: 1\nname: s\nsteps:\n  - filter: chars(output) >= 10\n  - dedup.exact(output)\n")
    base = ["run", str(dp), str(p), "--no-cache", "-q", "--max-row-bytes", "4096"]
    assert main([*base, "-o", str(tmp_path / "x.parquet"), "--batch", "--streaming"]) == 2  # one or the other
    assert "not allowed with" in capsys.readouterr().err
    formats = {}
    for flag in ("", "--batch", "--no-streaming", "--streaming"):
        out, rep = tmp_path / f"o{flag}.parquet", tmp_path / f"r{flag}.json"
        assert main([*base, "-o", str(out), "--report", str(rep), *([flag] if flag else [])]) == 0
        formats[flag] = json.loads(rep.read_text())["input"]["format"]
        assert pl.read_parquet(out).equals(pl.read_parquet(tmp_path / "o.parquet"))
    # a small input runs in memory unless --streaming says otherwise
    assert formats == {"": "jsonl", "--batch": "jsonl", "--no-streaming": "jsonl", "--streaming": "streamed"}
