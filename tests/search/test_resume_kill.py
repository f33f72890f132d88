"""A search killed with SIGKILL mid-round resumes without redoing finished work and ends the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autodp_search import Budget, ScriptedEvaluator, SearchConfig, run_search

from .helpers import qa_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_resume_after_sigkill(tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_rows(300))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_kill_runner.py")), str(data), str(out)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    j = out / "journal"
    deadline = time.time() + 120
    while time.time() < deadline and not (j / "cand-r2c1.json").exists():
        if proc.poll() is not None:
            pytest.fail("the search finished before it could be killed")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (j / "round-0001.json").exists() and not (j / "round-0002.json").exists()
    done_before = {p.name: p.stat().st_mtime_ns for p in j.glob("cand-*.json")}
    done_before["setup.json"] = (j / "setup.json").stat().st_mtime_ns  # the baseline
    # every journal file is whole JSON (atomic writes)
    import json

    for p in j.glob("*.json"):
        json.loads(p.read_text())

    cfg = dict(data=str(data), seed=5, heldout_n=20, final_heldout_n=20, quiet=True, budget=Budget(max_rounds=3),
               sample_fraction=0.5)
    ev = ScriptedEvaluator()
    resumed = run_search(SearchConfig(out_dir=str(out), resume=True, **cfg), evaluator=ev)
    for name, mtime in done_before.items():  # finished candidates were not redone
        assert (j / name).stat().st_mtime_ns == mtime
    full = run_search(SearchConfig(out_dir=str(tmp_path / "full"), **cfg), evaluator=ScriptedEvaluator())
    # the same candidates, refills included
    cands = sorted(p.name for p in (tmp_path / "full" / "journal").glob("cand-*.json"))
    assert sorted(p.name for p in j.glob("cand-*.json")) == cands
    assert any(p.name.endswith(".w1.plan.json") for p in j.iterdir()), "no refill happened: the test lost its edge"
    n_left = len(cands) - (len(done_before) - 1)
    # at most the remaining candidates + the final evaluation (candidates that keep no rows or fail
    # to execute are not evaluated); never the baseline or a finished candidate again
    assert 1 <= ev.calls <= n_left + 1
    assert resumed.best_text == full.best_text
    assert [(r.cid, r.dp_text, r.delta) for r in resumed.records] == [(r.cid, r.dp_text, r.delta) for r in full.records]
