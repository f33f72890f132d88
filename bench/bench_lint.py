"""Lint latency: strategies of 5, 20 and 100 steps in-process, and `autodp lint` as a command.

    python bench/bench_lint.py [--runs 300]

In-process: median and p95 of ``compile_text`` (YAML + parse + type check, what ``lint`` does),
against loading the same document with libyaml's ``CSafeLoader`` -- the loader autodp itself
uses, so the ratio is what lint adds on top of reading the YAML -- measured in the same run; the
pure-Python ``SafeLoader`` is printed beside it for reference.
Command: wall time of ``autodp lint FILE`` (a new process each time) against ``python -c pass``
measured in the same run. Targets (issue #2): median < 5 ms for 20 steps; the command < 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

STEP_POOL = [
    "clean.whitespace(instruction, output)",
    "filter: words(output) >= 5 and special_char_ratio(output) <= 0.25",
    "filter: word_repetition_ratio(output, n=10) <= 0.2",
    "dedup.exact(instruction, output)",
    "filter: chars(output) >= 20 and chars(output) <= 20000",
    "score = alnum_ratio(output) * 2 + stopword_ratio(output)",
    "filter: not heading_only(output) and echoes_question(instruction, output) < 0.9",
    "where: words(output) < 30\n    do:\n      - flag = true\n      - filter: digit_ratio(output) < 0.3",
]


def make_doc(n: int) -> str:
    steps = [STEP_POOL[i % len(STEP_POOL)] for i in range(n)]
    return "dp: 1\nname: bench\nsteps:\n" + "\n".join(f"  - {s}" for s in steps) + "\n"


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def time_calls(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--cmd-runs", type=int, default=15)
    args = ap.parse_args()

    from autodp_dsl import compile_text, registry

    registry()  # loaded once per process, as in the CLI
    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is None:
        raise SystemExit("this PyYAML has no libyaml (CSafeLoader): the baseline autodp uses is missing")
    print(f"{'steps':>6} {'median ms':>10} {'p95 ms':>8} {'CSafeLoader ms':>15} {'ratio':>7} {'SafeLoader ms':>14} {'ratio':>7}")
    for n in (5, 20, 100):
        src = make_doc(n)
        r = compile_text(src)
        assert not [d for d in r.diagnostics if d.severity == "error"], [d.headline() for d in r.diagnostics]
        for _ in range(20):
            compile_text(src)
        lint = time_calls(lambda src=src: compile_text(src, level="none"), args.runs)
        base = time_calls(lambda src=src: yaml.load(src, Loader=c_loader), args.runs)
        pure = time_calls(lambda src=src: yaml.load(src, Loader=yaml.SafeLoader), args.runs)
        med, p95, bmed, pmed = statistics.median(lint), percentile(lint, 0.95), statistics.median(base), statistics.median(pure)
        print(f"{n:>6} {med:>10.2f} {p95:>8.2f} {bmed:>15.3f} {med / bmed:>6.1f}x {pmed:>14.3f} {med / pmed:>6.1f}x")

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.dp"
        f.write_text(make_doc(20))
        exe = [sys.executable, "-m", "autodp_dsl.cli", "lint", str(f)]
        subprocess.run(exe, check=True, capture_output=True)  # warm the OS cache and the operator manifest
        cmd = time_calls(lambda: subprocess.run(exe, check=True, capture_output=True), args.cmd_runs)
        py = time_calls(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.cmd_runs)
    cm, pm = statistics.median(cmd), statistics.median(py)
    print(f"\n`autodp lint` (20 steps) as a command: median {cm:.0f} ms, p95 {percentile(cmd, 0.95):.0f} ms; "
          f"bare python start {pm:.0f} ms; ratio {cm / pm:.1f}x")


if __name__ == "__main__":
    main()
