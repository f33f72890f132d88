"""The operator manifest: later processes check strategies without importing operator modules,
see third-party operators (``autodp.ops`` entry points) like the stdlib's, and never use a stale one.

Each check runs in a fresh interpreter, as ``autodp lint`` does, with a private cache folder and a
third-party distribution made in a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autodp_dsl import compile_text
from autodp_dsl.catalog import load_entry_points

MYOPS = '''
from pydantic import Field, model_validator

from autodp_dsl.ops import Arg, NoParams, Op, OpKind, Params
from autodp_dsl.types import INT, STR


class LenParams(Params):
    n: int = Field(1, ge=0, le={le})


class MyLen(Op):
    """Length plus n."""

    name = "my.len"
    kind = OpKind.SIGNAL
    args = (Arg("text", STR),)
    returns = INT
    Params = LenParams


class PairParams(Params):
    lo: int = 0
    hi: int = 1

    @model_validator(mode="after")
    def _order(self):
        if self.lo > self.hi:
            raise ValueError("contradictory bounds: lo > hi")
        return self


class MyPair(Op):
    """Checked by code."""

    name = "my.pair"
    kind = OpKind.SIGNAL
    args = (Arg("text", STR),)
    returns = INT
    Params = PairParams


def register(reg):
    reg.add(MyLen)
    reg.add(MyPair)
    # made on the fly: not importable by module and name, loaded through this function
    reg.add(type("Dyn", (Op,), {{"__doc__": "Made here.", "name": "my.dyn", "kind": OpKind.SIGNAL,
                                 "args": (Arg("text", STR),), "returns": INT, "Params": NoParams}}))
'''

PROBE = '''
import json, sys
from autodp_dsl import compile_text, registry
reg = registry()
src = sys.stdin.read()
r = compile_text(src, level="none")
print(json.dumps({
    "diags": [d.headline() for d in r.diagnostics],
    "imported": sorted(m for m in ("myops", "pydantic", "stdlib_ops", "lark", "polars") if m in sys.modules),
    "dyn": reg.get("my.dyn").name if "get" in sys.argv else None,
}))
'''

CLEAN = "dp: 1\nname: t\nsteps:\n  - filter: my.len(output, n=3) > 1 and my.dyn(output) > 0 and words(output) >= 2\n"
BAD = "dp: 1\nname: t\nsteps:\n  - filter: my.len(output, n=9) > 1 and my.dyn(output, k=1) > 0\n  - clean.whitespace(output, max_blank_lines=99)\n"
CODE = "dp: 1\nname: t\nsteps:\n  - filter: my.pair(output, lo=3, hi=2) > 1\n"


@pytest.fixture
def world(tmp_path):
    site = tmp_path / "site"
    (site / "myops-1.0.dist-info").mkdir(parents=True)
    (site / "myops-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: myops\nVersion: 1.0\n")
    (site / "myops-1.0.dist-info" / "entry_points.txt").write_text("[autodp.ops]\nmine = myops:register\n")
    (site / "myops.py").write_text(MYOPS.format(le=5))
    work = tmp_path / "work"  # the working folder is on sys.path (`python -c`): keep the cache out of it
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "AUTODP_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("AUTODP_NO_OPS_CACHE", None)

    def run(src: str, *args: str, **extra_env) -> dict:
        out = subprocess.run([sys.executable, "-c", PROBE, *args], input=src, capture_output=True, text=True,
                             env={**env, **extra_env}, cwd=work, check=True)
        return json.loads(out.stdout)

    run.site = site
    run.cache = tmp_path / "cache" / "ops"
    return run


def test_later_processes_import_no_operator_module(world):
    first = world(BAD)
    assert "myops" in first["imported"] and list(world.cache.glob("*.json"))
    again = world(BAD)
    assert again["diags"] == first["diags"]
    assert again["imported"] == []  # neither the operators nor pydantic, Lark or Polars
    assert world(CLEAN) == {"diags": [], "imported": [], "dyn": None}
    assert any("n` input should be less than or equal to 5" in d for d in first["diags"])
    assert any("has no parameter `k`" in d for d in first["diags"])


def test_code_checks_import_the_operator(world):
    first = world(CODE)
    again = world(CODE)
    assert again["diags"] == first["diags"] and "contradictory bounds" in again["diags"][0]
    assert again["imported"] == ["myops", "pydantic"]


def test_classes_load_on_demand_even_when_made_on_the_fly(world):
    world(CLEAN)
    assert world(CLEAN, "get")["dyn"] == "my.dyn"


def test_an_edited_operator_module_makes_the_manifest_stale(world):
    assert any("`n` input should be less than or equal to 5" in d for d in world(BAD)["diags"])
    path = world.site / "myops.py"
    path.write_text(MYOPS.format(le=20))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new stamp even on coarse clocks
    assert not any("`n` input should be less than or equal" in d for d in world(BAD)["diags"])


def test_a_new_distribution_makes_the_manifest_stale(world):
    world(CLEAN)
    dist = world.site / "myops-1.0.dist-info"
    (dist / "entry_points.txt").unlink()
    (dist / "METADATA").unlink()
    dist.rmdir()
    st = world.site.stat()
    os.utime(world.site, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert any("unknown operator `my.len`" in d for d in world(CLEAN)["diags"])


def test_a_damaged_manifest_is_rebuilt(world):
    world(BAD)
    for f in world.cache.glob("*.json"):
        f.write_text("{not json")
    assert world(BAD)["diags"] and json.loads(next(world.cache.glob("*.json")).read_text())["format"] == 1


def test_it_can_be_turned_off(world):
    assert world(CLEAN, AUTODP_NO_OPS_CACHE="1")["diags"] == []
    assert not world.cache.exists()


def test_manifest_and_classes_give_the_same_diagnostics(tmp_path, monkeypatch):
    """The snapshot cases, checked with a registry read from a manifest and with the classes."""
    from autodp_dsl import manifest

    monkeypatch.setenv("AUTODP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AUTODP_NO_OPS_CACHE", raising=False)
    classes, sources = load_entry_points()
    manifest.save(classes, sources)
    described = manifest.load()
    assert described is not None and not described._ops  # nothing imported yet
    cases = Path(__file__).parent / "cases"
    for f in sorted(cases.glob("*.txt")):
        for block in f.read_text(encoding="utf-8").split("### ")[1:]:
            name, _, src = block.partition("\n")
            with_classes = compile_text(src, f"{name}.dp", reg=classes, level="none").diagnostics
            from_manifest = compile_text(src, f"{name}.dp", reg=described, level="none").diagnostics
            assert [d.to_dict() for d in from_manifest] == [d.to_dict() for d in with_classes], name
    assert described.names() == classes.names()
    for op in classes:
        assert described.get(op.name) is op
