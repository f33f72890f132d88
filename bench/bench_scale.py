"""Memory and time of the reference recipe as the data grows (issue 14: memory that does not grow
with the data):

    python bench/bench_scale.py [--sizes 20000,200000,2000000] [--data-dir /tmp] [--delete]

For each size N the input is ``DATA_DIR/sft_N.jsonl`` (generated with ``gen_sft_noise.py --n N
--seed 0`` when missing; 2,000,000 rows are about 6.6 GB: check the free disk first). Each size
runs ``autodp run strategies/reference-recipe.dp DATA -o OUT.parquet --no-cache`` in its own
subprocess, the mode (batch or streaming) chosen by autodp itself unless ``--mode`` forces one;
peak RSS and CPU time come from the child's rusage (``os.wait4``). Printed per size: mode, wall
seconds, CPU seconds, peak RSS, microseconds per row (wall and CPU) and the load average before
and after (the machine may be shared: compare rows measured under similar load), then the ratios
of each size's per-row time to the second size's (the issue's target: 2M within 1.5x of 200k, peak
RSS at 2M below 8 GB). ``--delete`` removes the inputs this script generated and every output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "strategies" / "reference-recipe.dp"
GEN = ROOT.parent / "shared" / "bench" / "gen_sft_noise.py"


def run_one(data: Path, out: Path, mode: str) -> dict:
    cmd = [sys.executable, "-m", "autodp_dsl.cli", "run", str(RECIPE), str(data), "-o", str(out), "--no-cache", "--force"]
    if mode != "auto":
        cmd.append(f"--{mode}")
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "COLUMNS": "200"})
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        err.seek(0)
        text = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed:\n{text[-2000:]}")
    chosen = "streaming" if "streaming run over" in text else "batch"
    why = next((line.split("(", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith(("streaming run over", "read "))), "")
    kept = next((line.split()[1] for line in text.splitlines() if line.startswith("kept ")), "?")
    return {
        "mode": chosen, "why": why, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_gb": ru.ru_maxrss / 2**20,
        "load_before": load0, "load_after": os.getloadavg()[0], "kept": kept,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,200000,2000000")
    ap.add_argument("--data-dir", default="/tmp")
    ap.add_argument("--mode", choices=["auto", "batch", "streaming"], default="auto")
    ap.add_argument("--delete", action="store_true", help="remove generated inputs and all outputs afterwards")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    data_dir = Path(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="autodp-scale-", dir=data_dir))
    generated: list[Path] = []
    rows = []
    try:
        for n in sizes:
            data = data_dir / f"sft_{n}.jsonl"
            if not data.exists():
                if not GEN.exists():
                    raise SystemExit(f"error: {data} is missing and {GEN} is not there to generate it")
                free = shutil.disk_usage(data_dir).free
                if free < n * 3400 * 2.2:  # about 3.3 KB a row, input plus output and spill
                    raise SystemExit(f"error: {free / 2**30:.1f} GB free in {data_dir}: too little for {n:,} rows")
                print(f"generating {data} ...", file=sys.stderr)
                subprocess.run([sys.executable, str(GEN), "--n", str(n), "--seed", "0", "--out", str(data)], check=True, stdout=subprocess.DEVNULL)
                generated.append(data)
            r = run_one(data, work / f"out_{n}.parquet", args.mode)
            (work / f"out_{n}.parquet").unlink(missing_ok=True)
            r.update(rows=n, input_gb=data.stat().st_size / 2**30, us_per_row=r["wall_s"] / n * 1e6, cpu_us_per_row=r["cpu_s"] / n * 1e6)
            rows.append(r)
            print(
                f"{n:>9,} rows ({r['input_gb']:.2f} GB): {r['mode']:<9} {r['wall_s']:7.1f} s wall, {r['cpu_s']:7.1f} s CPU, "
                f"peak RSS {r['peak_rss_gb']:5.2f} GB, {r['us_per_row']:6.1f} us/row wall, {r['cpu_us_per_row']:6.1f} us/row CPU, "
                f"load {r['load_before']:.1f}->{r['load_after']:.1f}, kept {r['kept']}  [{r['why']}]",
                flush=True,
            )
        if len(rows) >= 2:
            base = rows[1] if len(rows) > 2 else rows[0]
            for r in rows:
                print(
                    f"{r['rows']:>9,} rows: per-row time / {base['rows']:,}-row figure: wall {r['us_per_row'] / base['us_per_row']:.2f}x, "
                    f"CPU {r['cpu_us_per_row'] / base['cpu_us_per_row']:.2f}x; peak RSS {r['peak_rss_gb']:.2f} GB"
                )
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.delete:
            for p in generated:
                p.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
