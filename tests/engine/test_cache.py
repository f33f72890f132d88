"""The cache: checksums, atomic writes under crashes, LRU size cap, concurrent runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from autodp_dsl.engine import CacheStore, Executor, Policy

from .helpers import call, col, filt, make_registry, sample_frame, step, strategy

REG = make_registry()
ROOT = Path(__file__).resolve().parents[2]
KEY = "ab" + "c" * 62


def _frame(n=1000):
    return pl.DataFrame({"__rid": pl.Series(range(n), dtype=pl.UInt64), "value": [f"v{i}" * 5 for i in range(n)]})


def test_put_get_round_trip_and_metadata(tmp_path):
    st = CacheStore(tmp_path)
    n = st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
    e = st.get(KEY)
    assert e is not None and e.frame.equals(_frame())
    assert e.meta["size"] == n and len(e.meta["xxh3"]) == 32 and e.meta["kind"] == "statistic"
    assert st.verify().ok == 1


def test_damaged_entry_is_a_miss_and_removed(tmp_path):
    st = CacheStore(tmp_path)
    st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
    meta = json.loads((tmp_path / "objects" / KEY[:2] / f"{KEY}.json").read_text())
    data = tmp_path / "objects" / KEY[:2] / meta["data"]
    b = bytearray(data.read_bytes())
    b[len(b) // 2] ^= 0xFF
    data.write_bytes(bytes(b))
    rep = st.verify()
    assert rep.ok == 0 and rep.corrupt == [(KEY, "checksum mismatch")]
    assert st.get(KEY) is None
    assert not st.contains(KEY) and st.verify().corrupt == []


def test_same_size_rewrite_goes_through_the_checksum(tmp_path):
    st = CacheStore(tmp_path)
    st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
    meta = json.loads((tmp_path / "objects" / KEY[:2] / f"{KEY}.json").read_text())
    data = tmp_path / "objects" / KEY[:2] / meta["data"]
    b = bytearray(data.read_bytes())
    b[len(b) // 2] ^= 0xFF
    with open(data, "r+b") as f:  # in place: same inode, same size, only the mtime moves
        f.write(bytes(b))
    assert st.get(KEY) is None and not st.contains(KEY)


def test_arrow_ipc_entries_round_trip_and_count(tmp_path):
    st = CacheStore(tmp_path)
    sig = pl.DataFrame({"__rid": pl.Series(range(50), dtype=pl.UInt64), "value": pl.Series([[i] * 8 for i in range(50)], dtype=pl.Array(pl.UInt32, 8))})
    n = st.put(KEY, sig, {"kind": "statistic", "op": "sig"}, fmt="ipc")
    assert st.peek(KEY)["data"].endswith(".arrow") and st.get(KEY).frame.equals(sig)
    assert st.verify().ok == 1 and st.total_bytes() == n
    (tmp_path / "objects" / KEY[:2] / f"{KEY}.json").unlink()
    assert len(st.verify().orphans) == 1  # an .arrow file nobody names is an orphan too


_WRITER = """
import sys, polars as pl
from autodp_dsl.engine import CacheStore
st = CacheStore(sys.argv[1])
n = int(sys.argv[3])
df = pl.DataFrame({"__rid": pl.Series(range(n), dtype=pl.UInt64), "value": [f"row {i} " * 20 for i in range(n)]})
print("ready", flush=True)
for i in range(int(sys.argv[4])):
    st.put(sys.argv[2] if i == 0 else f"{i:064x}", df, {"kind": "statistic", "op": "w"})
"""


@pytest.mark.parametrize("point", ["data-partial", "before-meta", "meta-partial"])
def test_crash_mid_write_leaves_no_accepted_entry(tmp_path, point):
    env = dict(os.environ, AUTODP_CACHE_CRASH=point, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path), KEY, "2000", "1"], env=env)
    assert p.returncode == 137
    st = CacheStore(tmp_path)
    rep = st.verify()
    assert rep.ok == 0 and rep.corrupt == []  # nothing verify accepts
    assert st.get(KEY) is None and not st.contains(KEY)  # nothing a run would use
    assert rep.temporary or rep.orphans  # the debris is visible ...
    st.gc(grace_seconds=0)
    rep = st.verify()
    assert not rep.temporary and not rep.orphans  # ... and gc removes it
    # a later write of the same key works
    st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
    assert st.get(KEY) is not None


def test_sigkill_during_writes_never_corrupts(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for delay in (0.05, 0.23, 0.41):
        p = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), KEY, "20000", "1000"], env=env, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(delay)  # killed somewhere inside a stream of writes
        p.send_signal(signal.SIGKILL)
        p.wait()
        st = CacheStore(tmp_path)
        rep = st.verify()
        assert rep.corrupt == []
        for e in st.entries():
            assert st.get(e.key) is not None
    assert CacheStore(tmp_path).entries()  # the writers did get entries in before they were killed


def test_lru_eviction_respects_cap_and_recency(tmp_path):
    st = CacheStore(tmp_path)
    keys = [f"{i:02x}" + "0" * 62 for i in range(6)]
    for i, k in enumerate(keys):
        st.put(k, _frame(2000), {"kind": "statistic", "op": "x"})
        os.utime(tmp_path / "objects" / k[:2] / f"{k}.json", (1000 + i, 1000 + i))
    size = st.entries()[0].size
    st.get(keys[0])  # touched: now the most recently used
    rep = st.enforce_cap(size * 3 + 10)
    left = {e.key for e in st.entries()}
    assert rep.evicted == 3 and left == {keys[0], keys[4], keys[5]}
    assert st.total_bytes() <= size * 3 + 10


def test_executor_respects_cache_cap(tmp_path):
    s = strategy("cap", step("t.strip", col("output")), filt(">=", call("t.len", col("output")), 3), step("t.first", col("output")))
    ex = Executor(tmp_path, Policy.everything(), registry=REG, cache_max_bytes=2500)
    ex.run(s, sample_frame(300))
    assert ex.store.total_bytes() <= 2500


_RUNNER = """
import sys, json
sys.path.insert(0, sys.argv[3])
from tests.engine.helpers import make_registry, strategy, step, col, filt, call, sample_frame
from autodp_dsl.engine import Executor, Policy
reg = make_registry()
s = strategy("conc", step("t.strip", col("output")), filt(">=", call("t.count", col("output")), 3),
             step("t.upper", col("output")), step("t.first", col("instruction")))
ex = Executor(sys.argv[1], Policy.everything(), registry=reg)
for _ in range(3):
    r = ex.run(s, sample_frame(3000))
r.frame.write_parquet(sys.argv[2])
print(json.dumps({"balanced": r.accounting.balanced, "hits": r.cache_hits}))
"""


def test_two_concurrent_runs_on_one_cache(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen([sys.executable, "-c", _RUNNER, str(cache), str(tmp_path / f"out{i}.parquet"), str(ROOT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert json.loads(out)["balanced"]
    a, b = (pl.read_parquet(tmp_path / f"out{i}.parquet") for i in range(2))
    assert a.equals(b)
    rep = CacheStore(cache).verify()
    assert rep.corrupt == [] and rep.ok > 0
