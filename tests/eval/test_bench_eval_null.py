"""bench/eval_null.py runs end to end at its --quick size and resumes from the per-arm memo."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "bench_eval_null", Path(__file__).resolve().parents[2] / "bench" / "eval_null.py"
)
eval_null = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eval_null)


def test_quick_run_prints_its_estimate_first_and_resumes(tmp_path, capsys):
    cache, out = tmp_path / "memo", tmp_path / "null.json"
    assert eval_null.main(["--quick", "--cache-dir", str(cache), "--estimate-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("CPU estimate: 16 of 16 (arm, replicate) units left to train")
    assert eval_null.main(["--quick", "--cache-dir", str(cache), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[1].startswith("CPU estimate:") and "intervals excluding 0.5:" in text
    data = json.loads(out.read_text())
    assert len(data["comparisons"]) == 4 and data["replicates"] == 2
    assert all(len(c["per_replicate"]) == 2 for c in data["comparisons"])
    assert eval_null.main(["--quick", "--cache-dir", str(cache), "--estimate-only"]) == 0
    assert "CPU estimate: 0 of 16" in capsys.readouterr().out  # everything is in the memo now
