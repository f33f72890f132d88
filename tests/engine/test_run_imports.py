"""What ``autodp run`` imports: only what the run needs (start-up is a fixed cost of every run).

Each run is a fresh interpreter, as the command is, with a private cache folder: the first one
writes the operator manifest (and so imports every operator module), the second reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "strategies" / "reference-recipe.dp"

PROBE = """
import json, sys
from autodp_dsl.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
"""

# never, manifest or not: the model stack, the packages above the core, the grammar engine
NEVER = ("torch", "transformers", "openai", "vllm", "peft", "lark", "autodp_search", "autodp_eval")
# not once the manifest is current: the operators this recipe does not use and their model
# backends (with sqlite3, for the memo), and rich (--quiet prints nothing)
NOT_WITH_MANIFEST = ("stdlib_ops._llm", "stdlib_ops.backends", "stdlib_ops.scoring", "autodp_backends.memo", "sqlite3", "rich")


def _tops(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({n for n in names for m in modules if m == n or m.startswith(n + ".")})


def test_a_quiet_run_imports_only_what_it_needs(tmp_path):
    work, files = tmp_path / "work", tmp_path / "files"
    work.mkdir()
    files.mkdir()
    data = files / "rows.jsonl"
    data.write_text("".join(json.dumps({"text": f"row {i}: some words to keep here"}) + "\n" for i in range(3)), encoding="utf-8")
    env = {**os.environ, "AUTODP_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("AUTODP_NO_OPS_CACHE", None)

    def run() -> list[str]:
        # the working folder (on sys.path for -c) stays untouched: its mtime is part of the manifest's currency
        args = ["run", str(RECIPE), str(data), "-o", str(files / "out.jsonl"), "--no-cache", "--quiet", "--force"]
        r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=work, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["rc"] == 0
        return out["modules"]

    first = run()
    assert _tops(first, NEVER) == []
    assert list((tmp_path / "cache" / "ops").glob("*.json")), "the first run writes the operator manifest"
    again = run()
    assert _tops(again, NEVER) == []
    assert _tops(again, NOT_WITH_MANIFEST) == []
    assert {"stdlib_ops.dedup", "stdlib_ops.signals", "stdlib_ops.cleaning", "polars"} <= set(again)  # the probe sees real imports
