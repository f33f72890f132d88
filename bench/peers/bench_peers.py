#!/usr/bin/env python3
"""autodp against its peers in one run: Data-Juicer 1.6.1 on the reference recipe, datatrove's MinHash.

    bench/peers/build_env.sh                      # once: Data-Juicer + datatrove in a scratch venv
    python bench/peers/bench_peers.py             # 20,000 rows of gen_sft_noise.py --seed 0, 2 rounds
    python bench/peers/bench_peers.py --rounds 3 --json /tmp/peers.json

The same generated rows go to both tools; every command is a fresh process (cold): ``autodp run
strategies/reference-recipe.dp --no-cache`` and the bench venv's ``dj-process --config`` with
bench/peers/dj_recipe.yaml (the same recipe in Data-Juicer's terms). The settings run interleaved
(Data-Juicer, autodp, Data-Juicer, autodp, ... in every round), so a load that changes during the
run weighs on both. Each tool runs at one thread (autodp: POLARS_MAX_THREADS=1; Data-Juicer: np=1
and OMP/MKL/OpenBLAS threads 1) and at the setting that is fastest on this machine (autodp: all
cores; Data-Juicer: np equal to the cores; both its settings with ``use_cache: false``, which was
faster than its default Hugging Face cache here). The ratios divide medians measured in this run.

The kept ids are compared row by row, by the generator's planted junk kind (``noise``), with the
step that dropped each row the other tool kept: autodp's dropped file says it; for Data-Juicer one
more run, untimed, with its tracer on. Then datatrove's MinHash stage (signatures, buckets,
clusters, filter; one process, one worker) is timed against ``dedup.minhash`` alone on the same
texts, interleaved the same way, if datatrove is in the bench venv.

Before the rounds, autodp's packages are byte-compiled and its operator manifest written, the
state an installed autodp is in after its first use (pip byte-compiles the peers' venv too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GEN = ROOT.parent / "shared" / "bench" / "gen_sft_noise.py"
RECIPE = ROOT / "strategies" / "reference-recipe.dp"
DJ_RECIPE = HERE / "dj_recipe.yaml"
MINHASH_ONLY = HERE / "minhash-only.dp"
DEFAULT_VENV = Path(os.environ.get("AUTODP_BENCH_VENV", "~/.cache/autodp-bench/dj-venv")).expanduser()

sys.path.insert(0, str(HERE))
from keptdiff import compare, histogram, nearest_earlier_jaccard, read_ids, render  # noqa: E402

THREAD_VARS = ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS")


@dataclass
class Run:
    tool: str
    setting: str
    wall: float
    cpu: float  # user + system seconds of the command and its children
    rss_mib: float
    load: float  # 1-minute load average when it started
    kept: list = field(default_factory=list, repr=False)
    drops: dict = field(default_factory=dict, repr=False)  # id -> step that dropped it
    extra: dict = field(default_factory=dict)


def env_for(one_thread: bool, work: Path) -> dict:
    env = dict(os.environ)
    for v in THREAD_VARS:
        env.pop(v, None)
    if one_thread:
        env.update({v: "1" for v in THREAD_VARS})
    # the peers' caches and downloads stay in the scratch folder; nothing may be fetched
    env.update(HF_HOME=str(work / "hf"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def timed(cmd: list, env: dict, log: Path) -> tuple[float, float, float, float]:
    """(wall s, user+sys s, max RSS MiB, load) of one command; exits with its log's tail if it fails."""
    load = os.getloadavg()[0]
    with open(log, "wb") as out:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        sys.exit(f"{tail}\nerror: {' '.join(map(str, cmd))} exited with {p.returncode} (log: {log})")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, load


def autodp_cmd() -> list:
    exe = Path(sys.executable).with_name("autodp")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "autodp_dsl.cli"]


AUTODP_PACKAGES = ("autodp_dsl", "stdlib_ops", "autodp_backends")  # what `autodp run` imports of autodp


def byte_compile_autodp(env: dict) -> list[str]:
    """Byte-compile the autodp packages the timed command will import, found by that command's
    interpreter with the bench's environment (PYTHONPATH included), as ``pip install`` does for an
    installed package -- and did for the peers' venv. Without it, an environment that sets
    PYTHONDONTWRITEBYTECODE (this one does) makes every timed autodp process compile its ~100
    modules from source, about 0.2 s of CPU that no installed copy pays. Returns the folders."""
    code = f"import importlib, os; print('\\n'.join(os.path.dirname(importlib.import_module(m).__file__) for m in {AUTODP_PACKAGES!r}))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    folders = out.stdout.split()
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], env=env, check=True, stdout=subprocess.DEVNULL)
    # and the operator manifest written (autodp_dsl/manifest.py), as any first use after an
    # install or an edit does: else the first timed run imports every operator module
    subprocess.run([*autodp_cmd(), "lint", str(RECIPE)], env=env, check=True, stdout=subprocess.DEVNULL)
    return folders


def step_label(text: str) -> str:
    """`filter: special_char_ratio(text, chars="") <= 0.25` -> `filter special_char_ratio`."""
    if text.startswith("filter: "):
        return "filter " + text[len("filter: "):].split("(")[0].split(" ")[0]
    return text.split("(")[0]


def run_autodp(strategy: Path, data: Path, work: Path, one_thread: bool, tag: str) -> Run:
    d = work / tag
    d.mkdir()
    out, report = d / "kept.jsonl", d / "report.json"
    cmd = [*autodp_cmd(), "run", str(strategy), str(data), "-o", str(out), "--no-cache", "--quiet", "--report", str(report)]
    wall, cpu, rss, load = timed(cmd, env_for(one_thread, work), d / "log.txt")
    rep = json.loads(report.read_text(encoding="utf-8"))
    labels = {s["step"]: step_label(s["text"]) for s in rep["accounting"]["steps"]}
    ids = read_ids(data)  # the dropped file names rows by their position in the input
    drops = {}
    for line in (d / "kept.jsonl.dropped.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        drops[ids[r["rid"]]] = labels.get(r["step"], r["step"])
    kept = read_ids(out)
    shutil.rmtree(d)
    setting = "POLARS_MAX_THREADS=1" if one_thread else "all cores"
    return Run("autodp", setting, wall, cpu, rss, load, kept, drops, {"in_process_s": rep["seconds"]})


def dj_config(data: Path, d: Path, np_: int, trace: bool) -> Path:
    cfg = yaml.safe_load(DJ_RECIPE.read_text(encoding="utf-8"))
    cfg.update(project_name="autodp-peers", dataset_path=str(data), export_path=str(d / "out" / "kept.jsonl"),
               work_dir=str(d / "work"), np=np_, use_cache=False, temp_dir=str(d / "tmp"), ds_cache_dir=str(d / "cache"),
               open_tracer=trace)
    if trace:
        cfg["trace_num"] = 10**9  # every dropped sample, not the first ten
    path = d / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def dj_drops(work_dir: Path) -> dict:
    """id -> Data-Juicer op that dropped it, from the tracer's files.

    Filters list every sample they drop; the deduplicators list pairs (``dup1`` kept, ``dup2``
    dropped), one pair per duplicate group, so a group's other copies stay unnamed.
    """
    drops = {}
    for f in sorted(work_dir.glob("*/trace/*.jsonl")):
        op = f.stem.split("-", 1)[1]
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if f.name.startswith("sample_trace-") and op.endswith("_filter"):
                drops[r["id"]] = op
            elif f.name.startswith("duplicate-"):
                drops[r["dup2"]["id"]] = op
    return drops


def run_dj(venv: Path, data: Path, work: Path, np_: int, one_thread: bool, tag: str, trace: bool = False) -> Run:
    d = work / tag
    d.mkdir()
    cmd = [str(venv / "bin" / "dj-process"), "--config", str(dj_config(data, d, np_, trace))]
    wall, cpu, rss, load = timed(cmd, env_for(one_thread, work), d / "log.txt")
    kept = read_ids(d / "out" / "kept.jsonl")
    drops = {}
    if trace:
        drops = dj_drops(d / "work")
        # filters name every sample they drop, deduplicators one pair per group: the rest are copies
        untraced = set(read_ids(data)) - set(kept) - set(drops)
        drops.update(dict.fromkeys(untraced, "a deduplicator (copy not named by the tracer)"))
    shutil.rmtree(d)
    setting = f"np={np_}" + (", 1 thread" if one_thread else "")
    return Run("Data-Juicer", setting, wall, cpu, rss, load, kept, drops)


def run_datatrove(venv: Path, data: Path, work: Path, tag: str) -> Run:
    d = work / tag
    d.mkdir()
    cmd = [str(venv / "bin" / "python"), str(HERE / "datatrove_minhash.py"), str(data), str(d / "work"), str(d / "result.json")]
    wall, cpu, rss, load = timed(cmd, env_for(True, work), d / "log.txt")
    res = json.loads((d / "result.json").read_text(encoding="utf-8"))
    shutil.rmtree(d)
    kept = set(res["kept"])
    drops = {i: "datatrove MinHash" for i in read_ids(data) if i not in kept}  # its only step
    return Run("datatrove", "1 worker, 1 thread", wall, cpu, rss, load, res["kept"], drops, {"stages_s": res["seconds"]})


def minhash_margins(data: Path, rows: list, a: Run, b: Run, b_drops: dict) -> str:
    """Where the two MinHash steps disagree: each such row's best exact Jaccard with an earlier row.

    A row kept by one tool and dropped by the other's MinHash step, or by a Data-Juicer
    deduplicator its tracer did not name (counted here: autodp's exact dedup, which collapses
    whitespace, finds the copies Data-Juicer's does, so a row autodp keeps is rarely an exact copy).
    Near the 0.7 threshold the LSH links a pair only by chance, so such rows differ by chance; far
    from it they differ by definition.
    """
    ka, kb = set(a.kept), set(b.kept)
    pos = {i: p for p, (i, _) in enumerate(rows)}
    def by_minhash(why: str) -> bool:
        return "minhash" in why or "deduplicator (" in why

    sides = {f"kept by {a.tool}, dropped by {b.tool}'s MinHash": [pos[i] for i in ka - kb if by_minhash(b_drops.get(i, ""))],
             f"kept by {b.tool}, dropped by {a.tool}'s MinHash": [pos[i] for i in kb - ka if by_minhash(a.drops.get(i, ""))]}
    texts = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    best = nearest_earlier_jaccard(texts, [p for v in sides.values() for p in v])
    lines = ["\nMinHash disagreements: best exact Jaccard with an earlier row (5-word shingles of the raw text, lower case):"]
    for label, ps in sides.items():
        lines.append(f"- {label} ({len(ps)}): {histogram(best[p] for p in ps)}")
    # Data-Juicer splits words on " " only and gives a text of fewer than 5 such words no shingles:
    # all of them fall into one cluster (shared/reference/datajuicer-semantics.md, 6.7)
    few = [p for p in next(iter(sides.values())) if len([w for w in texts[p].split(" ") if w]) < 5]
    lines.append(f"  of the first, {len(few)} have fewer than 5 space-separated words (no shingles in Data-Juicer: one cluster)")
    return "\n".join(lines)


def summary(runs: list[Run]) -> dict:
    """(tool, setting) -> medians and ranges of the rounds."""
    out: dict = {}
    for r in runs:
        out.setdefault((r.tool, r.setting), []).append(r)
    return {k: {"wall": statistics.median(x.wall for x in v), "walls": [x.wall for x in v],
                "cpu": statistics.median(x.cpu for x in v), "rss": max(x.rss_mib for x in v),
                "loads": [x.load for x in v], "kept": len(v[0].kept),
                "same_kept": all(x.kept == v[0].kept for x in v)} for k, v in out.items()}


def table(s: dict) -> str:
    lines = ["| tool | setting | wall s (median; all rounds) | CPU s | peak RSS MiB | kept | 1-min load at start |",
             "|---|---|---:|---:|---:|---:|---|"]
    for (tool, setting), v in s.items():
        walls = ", ".join(f"{w:.2f}" for w in v["walls"])
        same = "" if v["same_kept"] else " (differs between rounds!)"
        lines.append(f"| {tool} | {setting} | {v['wall']:.2f} ({walls}) | {v['cpu']:.2f} | {v['rss']:.0f} | "
                     f"{v['kept']:,}{same} | {', '.join(f'{x:.1f}' for x in v['loads'])} |")
    return "\n".join(lines)


def ratio_line(label: str, slow: tuple, fast: tuple, s: dict) -> str:
    a, b = s[slow], s[fast]
    return (f"- {label}: {slow[0]} ({slow[1]}) {a['wall']:.2f} s / {fast[0]} ({fast[1]}) {b['wall']:.2f} s = "
            f"**{a['wall'] / b['wall']:.1f}x** by wall clock, {a['cpu'] / b['cpu']:.1f}x by CPU time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"the bench venv of build_env.sh (default {DEFAULT_VENV})")
    ap.add_argument("--build", action="store_true", help="run build_env.sh on --venv first (skips what is installed)")
    ap.add_argument("--data", type=Path, help="jsonl with id, noise, text (default: generate --n rows with gen_sft_noise.py)")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, help="scratch folder (default: a new temp dir, removed at the end)")
    ap.add_argument("--no-why", action="store_true", help="skip the untimed Data-Juicer run with its tracer")
    ap.add_argument("--no-datatrove", action="store_true")
    ap.add_argument("--json", type=Path, help="write every run's figures here too")
    a = ap.parse_args()
    if a.rounds < 1 or a.n < 1:
        sys.exit("error: --rounds and --n must be at least 1")
    if a.build:
        subprocess.run([str(HERE / "build_env.sh"), str(a.venv)], check=True)
    if not (a.venv / "bin" / "dj-process").exists():
        sys.exit(f"error: no Data-Juicer in {a.venv}: run bench/peers/build_env.sh {a.venv} (about 3 minutes), or pass --build")

    work = a.work or Path(tempfile.mkdtemp(prefix="autodp-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if a.data:
            data = a.data.resolve()
        else:
            data = work / f"sft_{a.n}.jsonl"
            subprocess.run([sys.executable, str(GEN), "--n", str(a.n), "--seed", str(a.seed), "--out", str(data)],
                           check=True, stdout=subprocess.DEVNULL)
        rows = []
        with open(data, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                r = json.loads(line)
                if not isinstance(r, dict) or "id" not in r or not isinstance(r.get("text"), str):
                    sys.exit(f"error: {data}:{n}: each row needs an `id` and a string `text` (the rows are compared by id)")
                rows.append((r["id"], r.get("noise", "?")))
        cores = os.cpu_count() or 1
        compiled = byte_compile_autodp(env_for(True, work))
        print(f"autodp byte-compiled (as installed): {', '.join(compiled)}; PYTHONDONTWRITEBYTECODE="
              f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}")
        print(f"{len(rows):,} rows of {data.name} ({data.stat().st_size / 2**20:.1f} MiB), {cores} CPUs, "
              f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)

        runs: list[Run] = []
        for rnd in range(a.rounds):
            for tag, fn in ((f"dj1-{rnd}", lambda t: run_dj(a.venv, data, work, 1, True, t)),
                            (f"ad1-{rnd}", lambda t: run_autodp(RECIPE, data, work, True, t)),
                            (f"djn-{rnd}", lambda t: run_dj(a.venv, data, work, cores, False, t)),
                            (f"adn-{rnd}", lambda t: run_autodp(RECIPE, data, work, False, t))):
                r = fn(tag)
                runs.append(r)
                print(f"  round {rnd + 1}: {r.tool} ({r.setting}) {r.wall:.2f} s wall, {r.cpu:.2f} s CPU, "
                      f"kept {len(r.kept):,}, load {r.load:.2f}", flush=True)
        s = summary(runs)
        dj1, djn = ("Data-Juicer", "np=1, 1 thread"), ("Data-Juicer", f"np={cores}")
        ad1, adn = ("autodp", "POLARS_MAX_THREADS=1"), ("autodp", "all cores")
        fastest_dj = min((dj1, djn), key=lambda k: s[k]["wall"])
        fastest_ad = min((ad1, adn), key=lambda k: s[k]["wall"])
        print("\n## Reference recipe, cold, interleaved\n")
        print(table(s))
        print()
        print(ratio_line("each at its fastest setting", fastest_dj, fastest_ad, s))
        print(ratio_line("both at one thread", dj1, ad1, s))

        why = {}
        if not a.no_why:
            t = run_dj(a.venv, data, work, 1, True, "dj-trace", trace=True)
            why = t.drops
            if t.kept != next(r for r in runs if r.tool == "Data-Juicer").kept:
                print("\nnote: the traced Data-Juicer run kept other rows than the timed runs")
        ad_run = next(r for r in runs if r.tool == "autodp")
        dj_run = next(r for r in runs if r.tool == "Data-Juicer")
        cmp_ = compare(rows, ad_run.kept, dj_run.kept, ("autodp", "Data-Juicer"), ad_run.drops, why)
        print("\n## Kept rows, row by row\n")
        print(render(cmp_))
        if why:
            print(minhash_margins(data, rows, ad_run, dj_run, why))

        dt_runs: list[Run] = []
        if not a.no_datatrove:
            probe = subprocess.run([str(a.venv / "bin" / "python"), "-c", "import datatrove"], capture_output=True)
            if probe.returncode != 0:
                print(f"\n## datatrove\n\nnot measured: datatrove does not import in {a.venv}: "
                      f"{probe.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
            else:
                for rnd in range(a.rounds):
                    for tag, fn in ((f"dt-{rnd}", lambda t: run_datatrove(a.venv, data, work, t)),
                                    (f"mh1-{rnd}", lambda t: run_autodp(MINHASH_ONLY, data, work, True, t)),
                                    (f"mhn-{rnd}", lambda t: run_autodp(MINHASH_ONLY, data, work, False, t))):
                        r = fn(tag)
                        r.tool = "datatrove MinHash" if r.tool == "datatrove" else "autodp dedup.minhash"
                        dt_runs.append(r)
                        print(f"  round {rnd + 1}: {r.tool} ({r.setting}) {r.wall:.2f} s wall, kept {len(r.kept):,}", flush=True)
                s2 = summary(dt_runs)
                dt, mh1, mhn = ("datatrove MinHash", "1 worker, 1 thread"), ("autodp dedup.minhash", "POLARS_MAX_THREADS=1"), ("autodp dedup.minhash", "all cores")
                print("\n## MinHash alone: datatrove's stage against dedup.minhash, same texts\n")
                print(table(s2))
                stages = [r.extra["stages_s"] for r in dt_runs if r.tool == "datatrove MinHash"]
                print("\ndatatrove stages (s, median): " + ", ".join(
                    f"{k} {statistics.median(x[k] for x in stages):.2f}" for k in stages[0]))
                print(ratio_line("one thread", dt, mh1, s2))
                print(ratio_line("autodp at all cores", dt, mhn, s2))
                mh = next(r for r in dt_runs if r.tool == "autodp dedup.minhash")
                dtr = next(r for r in dt_runs if r.tool == "datatrove MinHash")
                print("\n" + render(compare(rows, mh.kept, dtr.kept, ("autodp dedup.minhash", "datatrove"), mh.drops, dtr.drops)))
        print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if a.json:
            a.json.write_text(json.dumps([{k: v for k, v in vars(r).items() if k not in ("kept", "drops")} | {"kept": len(r.kept)}
                                          for r in runs + dt_runs], indent=1), encoding="utf-8")
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
