"""A property-based fuzz of ``autodp run`` over output paths (issue 12), in process.

Each example builds a folder of things a careless user could point an output at (the input, links to
it, files, a folder with a fake .git, an empty folder, a read-only folder, fifos, dangling links,
sidecar-named files, a file named like autodp's index), runs the CLI once or twice with drawn
``-o``/``--dropped``/``--quarantine``/``--report``/``--force``/``--streaming``, and checks that no path
outside the declared outputs changed (kind, mode, bytes, link target), that no folder that held
files lost any of them, that links and special files stay what they were, that the input is byte
identical, and that the CLI returned 0, 1 or 2 with one ``error:`` line, never a traceback.
Its own example budget keeps it to a few seconds in CI.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autodp_dsl.cli import main
from autodp_dsl.outputs import INDEX

DP = "dp: 1\nname: fuzz\nsteps:\n  - filter: chars(output) >= 12\n"
ROWS = "\n".join(json.dumps({"instruction": f"q {i}", "output": "long enough answer" if i % 2 else "short"}) for i in range(6)) + "\n{broken\n"

EXISTING = [
    "data.jsonl", "s.dp", "link_in.jsonl", "hard_in.jsonl", "notes", "foreign.jsonl", "link_foreign.jsonl", "dangling.jsonl",
    "proj", "proj/readme", "proj/.git", "empty", "ro", "ro/inside.jsonl", "fifo", "fifo.jsonl", "h1.jsonl",
    "out.jsonl.quarantine.jsonl", "data.jsonl.dropped.jsonl",
]
FRESH = [
    "out.jsonl", "out.parquet", "out.json", "out.csv", "out_ds", "new/deep/out.jsonl", "proj/x.jsonl", "ro/x.jsonl",
    "notes/x.jsonl", "empty/x.parquet", "idx/out.jsonl", "r.json",
]
NAME = st.sampled_from(FRESH) | st.sampled_from(EXISTING)  # about half the draws name something that exists
SIDE = st.none() | st.none() | NAME  # an optional output: left out two times in three


def build(root: str) -> None:
    j = lambda *p: os.path.join(root, *p)  # noqa: E731
    Path(j("data.jsonl")).write_text(ROWS)
    Path(j("s.dp")).write_text(DP)
    os.symlink(j("data.jsonl"), j("link_in.jsonl"))
    os.link(j("data.jsonl"), j("hard_in.jsonl"))
    Path(j("notes")).write_text("my notes")
    Path(j("foreign.jsonl")).write_text('{"mine": 1}\n')
    os.symlink(j("foreign.jsonl"), j("link_foreign.jsonl"))
    os.symlink(j("nowhere", "x.jsonl"), j("dangling.jsonl"))
    os.makedirs(j("proj", ".git", "objects"))
    Path(j("proj", ".git", "objects", "ab")).write_text("blob")
    Path(j("proj", "readme")).write_text("hi")
    os.mkdir(j("empty"))
    os.mkdir(j("ro"))
    Path(j("ro", "inside.jsonl")).write_text("ro\n")
    os.chmod(j("ro"), 0o555)
    os.mkfifo(j("fifo"))
    os.mkfifo(j("fifo.jsonl"))
    Path(j("h1.jsonl")).write_text('{"linked": 1}\n')
    os.link(j("h1.jsonl"), j("h2.jsonl"))
    os.mkdir(j("idx"))
    Path(j("idx", INDEX)).write_text("a user's file named like the index")  # so no file output is written in idx/
    Path(j("out.jsonl.quarantine.jsonl")).write_text("user file\n")
    Path(j("data.jsonl.dropped.jsonl")).write_text("user file\n")


def snapshot(root: str) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            s = os.lstat(p)
            kind = stat.S_IFMT(s.st_mode)
            body = os.readlink(p) if stat.S_ISLNK(s.st_mode) else Path(p).read_bytes() if stat.S_ISREG(s.st_mode) else None
            out[os.path.relpath(p, root)] = (kind, stat.S_IMODE(s.st_mode), body)
    return out


def declared(root: str, outs: list[str]) -> tuple[set[str], set[str]]:
    """The declared output paths (and what a symlink among them points at), relative to ``root``;
    and the index files in their folders."""
    names: set[str] = set()
    for o in outs:
        names.add(o)
        real = os.path.realpath(os.path.join(root, o))
        if real.startswith(os.path.realpath(root) + os.sep):
            names.add(os.path.relpath(real, os.path.realpath(root)))
    indexes = {os.path.join(os.path.dirname(n), INDEX) if os.path.dirname(n) else INDEX for n in names}
    return names, indexes


def under(p: str, d: str) -> bool:
    return p.startswith(d + os.sep)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(
    o=NAME,
    dropped=SIDE,
    quarantine=SIDE,
    report=SIDE,
    force=st.booleans(),
    streaming=st.booleans(),
    twice=st.booleans(),
)
def test_outputs_never_touch_anything_else(o, dropped, quarantine, report, force, streaming, twice):
    with tempfile.TemporaryDirectory(prefix="autodp-fuzz-") as root:
        try:
            build(root)
            before = snapshot(root)
            argv = ["run", os.path.join(root, "s.dp"), os.path.join(root, "data.jsonl"), "-o", os.path.join(root, o), "--no-cache", "-q"]
            for flag, v in (("--dropped", dropped), ("--quarantine", quarantine), ("--report", report)):
                if v is not None:
                    argv += [flag, os.path.join(root, v)]
            argv += ["--force"] * force + ["--streaming"] * streaming
            for _ in range(1 + twice):
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    rc = main(argv)
                msg = err.getvalue().strip()
                assert rc in (0, 1, 2), (rc, msg)
                if rc:
                    assert msg.startswith("error: ") and "\n" not in msg and "Traceback" not in msg, msg
            after = snapshot(root)
        finally:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, "ro"), 0o755)
        outs = [o, dropped or o + ".dropped.jsonl", quarantine or o + ".quarantine.jsonl"] + ([report] if report else [])
        names, indexes = declared(root, outs)

        def may_change(p: str) -> bool:
            if p in names or p in indexes:
                return before.get(p, (None,))[0] not in (stat.S_IFLNK, stat.S_IFIFO)  # links and fifos stay as they are
            if p in before and before[p][0] == stat.S_IFDIR and any(under(q, p) for q in before):
                return False  # a folder that held files is never replaced
            if any(under(p, d) for d in names):  # inside an output folder, unless that folder held files before
                return not any(under(q, d) for d in names if under(p, d) for q in before)
            return p not in before and any(under(n, p) for n in names)  # a parent folder made for an output

        for p in sorted(set(before) | set(after)):
            if not may_change(p):
                assert before.get(p) == after.get(p), (p, argv)
        for p, (kind, _, _) in before.items():
            if kind == stat.S_IFDIR and any(under(q, p) for q in before):
                assert after.get(p, (None,))[0] == stat.S_IFDIR, (p, argv)
        assert after["data.jsonl"] == before["data.jsonl"] and after["s.dp"] == before["s.dp"]
