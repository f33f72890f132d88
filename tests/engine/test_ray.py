"""The Ray engine gives the local engine's results: the same kept rows and ids, drop reasons and
accounting, for every curated strategy that needs no model (on a local Ray cluster of 2 CPUs).

Skipped when Ray is not installed (``pip install 'autodp[ray]'``), except the check that the core
never imports it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from autodp_dsl.cli import main
from autodp_dsl.engine import Executor
from autodp_dsl.engine.render import load_strategy

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = sorted((ROOT / "strategies").glob("*.dp"))
NEEDS_MODEL = {"refine-weak-answers"}


@pytest.fixture(scope="module")
def fault_file(tmp_path_factory):
    """The file that arms the engine's fault hook (``distributed._fault_point``): the workers get
    ``AUTODP_RAY_FAULT`` naming it; a test writes the file to arm it."""
    return tmp_path_factory.mktemp("fault") / "arm"


@pytest.fixture(scope="module")
def ray_cluster(fault_file):
    """The cluster of ``RAY_ADDRESS`` when set (CI, or a head started once with ``ray start
    --head --num-cpus 2``: Ray's own start may time out on a loaded machine, docs/ray.md), else a
    local one of 2 CPUs."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    env = {"env_vars": {"AUTODP_RAY_FAULT": str(fault_file)}}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], runtime_env=env, log_to_driver=False, configure_logging=False)
    else:
        # address="local": a new cluster even where /tmp/ray names an earlier one (a head left by a
        # developer's `ray start` would otherwise be joined, and then num_cpus is refused)
        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False, configure_logging=False, runtime_env=env)
    yield ray
    ray.shutdown()


_WORDS = "asthma airway cough fever gout joint kidney liver heart blood pressure sugar insulin dose tablet sleep pain rest water diet".split()


def _rows(n: int, seed: int = 0) -> list[dict]:
    """Clinical-looking pairs with every problem the curated strategies clean: markup, mojibake,
    links and e-mail addresses, terse and heading-only answers, answers that echo the question,
    exact and near duplicates, odd whitespace."""
    rnd = random.Random(seed)
    base = [" ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(6, 60))) for _ in range(n // 3)]
    rows = []
    for i in range(n):
        q = f"What helps with {rnd.choice(_WORDS)} and {rnd.choice(_WORDS)} ?"
        a = base[i % len(base)] if i % 5 else base[rnd.randrange(len(base))]
        kind = i % 11
        if kind == 1:
            a = f"<p>{a}</p> &amp; <b>more</b>"
        elif kind == 2:
            a = a.replace("a", "Ã©", 1) + " cafÃ©"
        elif kind == 3:
            a = f"{a} mail doc{i}@example.com or see https://example.org/{i}"
        elif kind == 4:
            a = rnd.choice(["Yes.", "No", "", "  "])
        elif kind == 5:
            a = q + " " + q
        elif kind == 6:
            a = a + " " + rnd.choice(_WORDS)  # near-duplicate of another row's answer
        elif kind == 7:
            a = "Symptoms\n\n"
        elif kind == 8:
            a = "  " + a.replace(" ", "   ", 3) + "\t"
        elif kind == 9:
            a = " ".join([rnd.choice(_WORDS)] * 30)  # repetitive
        rows.append({"instruction": q, "input": rnd.choice(["", "I feel ill", q]), "output": a, "text": q + "\n\n" + a})
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    p = tmp_path_factory.mktemp("ray") / "d.jsonl"
    lines = [json.dumps(r) for r in _rows(300)]
    lines.insert(17, '{"instruction": "broken')  # quarantined, as locally
    p.write_text("\n".join(lines) + "\n")
    return p


def _same(mem, res, out: Path):
    """The local (in-memory) result ``mem`` and the Ray result ``res`` (rows written to ``out``) agree."""
    kept = pl.read_parquet(out) if out.suffix == ".parquet" else pl.read_ndjson(out)
    assert kept.equals(mem.frame)
    assert res.ids.equals(mem.ids)
    assert res.keys == mem.keys and res.fingerprint == mem.fingerprint
    assert res.quarantine.equals(mem.quarantine)
    assert res.accounting.dropped_ids.equals(mem.accounting.dropped_ids)
    for a, b in zip(mem.accounting.steps, res.accounting.steps, strict=True):
        assert (a.step, a.text, a.kind, a.key, a.rows_in, a.rows_out, a.modified, a.added, a.dropped) == (
            b.step, b.text, b.kind, b.key, b.rows_in, b.rows_out, b.modified, b.added, b.dropped
        )
    acc = res.accounting
    assert acc.balanced and acc.rows_in == acc.kept + acc.dropped + acc.quarantined


@pytest.mark.parametrize("path", [p for p in STRATEGIES if p.stem not in NEEDS_MODEL], ids=lambda p: p.stem)
def test_curated_strategy_same_as_local(ray_cluster, data, tmp_path, path):
    s = load_strategy(path)
    ex = Executor()
    mem = ex.run(s, data)
    out = tmp_path / "out.parquet"
    res = ex.run_ray(s, data, out, block_rows=64, partitions=3)  # 5 blocks, 3 reducers per shuffle
    _same(mem, res, out)
    assert sum(st.dropped_total for st in res.accounting.steps) > 0


SELECTION = """dp: 1
name: selection
steps:
  - clean.whitespace(output)
  - short = words(output) < 12
  - where: short
    do:
      - clean.html(output)
      - filter: chars(output) >= 12
  - dedup.minhash(output, threshold=0.7, num_perm=64, ngram=2)
  - select.diverse(output, chars(output), fraction=0.8, num_perm=32, ngram=2)
  - select.top(words(output), fraction=0.9)
  - select.sample(fraction=0.9, seed=3)
"""


def test_where_blocks_and_selection_same_as_local(ray_cluster, data, tmp_path):
    dp = tmp_path / "sel.dp"
    dp.write_text(SELECTION)
    s = load_strategy(dp)
    ex = Executor()
    mem = ex.run(s, data)
    out = tmp_path / "out.jsonl"
    res = ex.run_ray(s, data, out, block_rows=50, partitions=2)
    _same(mem, res, out)
    dropped = {st.step for st in res.accounting.steps if st.dropped_total}
    assert {"3", "4", "5", "6", "7"} <= dropped | {d.split(".")[0] for d in res.accounting.dropped_ids["step"].unique()}
    assert any("." in d for d in res.accounting.dropped_ids["step"].to_list())  # a drop inside the where-block


def test_cli_engine_ray(ray_cluster, data, tmp_path):
    dp = ROOT / "strategies" / "minimal.dp"
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main(["run", str(dp), str(data), "-o", str(local), "-q", "--no-cache"]) == 0
    rc = main(["run", str(dp), str(data), "-o", str(remote), "-q", "--no-cache", "--engine", "ray", "--report", str(tmp_path / "r.json")])
    assert rc == 0
    assert pl.read_ndjson(remote).equals(pl.read_ndjson(local))
    assert (tmp_path / "ray.jsonl.dropped.jsonl").read_bytes() == (tmp_path / "local.jsonl.dropped.jsonl").read_bytes()
    assert (tmp_path / "ray.jsonl.quarantine.jsonl").read_bytes() == (tmp_path / "local.jsonl.quarantine.jsonl").read_bytes()
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["accounting"]["balanced"] and rep["accounting"]["quarantined"] == 1


def test_parquet_in_jsonl_out(ray_cluster, data, tmp_path):
    pq = tmp_path / "d.parquet"
    pl.DataFrame(_rows(300)).write_parquet(pq)
    s = load_strategy(ROOT / "strategies" / "medquad-clean.dp")
    ex = Executor()
    out = tmp_path / "out.jsonl"
    _same(ex.run(s, pq), ex.run_ray(s, pq, out, block_rows=100), out)


def test_model_step_is_refused_before_anything_runs(ray_cluster, data, tmp_path, capsys):
    from autodp_dsl.engine.distributed import NotOnRay

    s = load_strategy(ROOT / "strategies" / "refine-weak-answers.dp")
    with pytest.raises(NotOnRay, match="refine.rewrite needs a model"):
        Executor().run_ray(s, data, tmp_path / "o.parquet")
    out = tmp_path / "o.jsonl"
    assert main(["run", str(ROOT / "strategies" / "refine-weak-answers.dp"), str(data), "-o", str(out), "-q", "--no-cache", "--engine", "ray"]) == 2
    assert "does not run on Ray" in capsys.readouterr().err and not out.exists()


def test_address_needs_the_ray_engine(data, tmp_path, capsys):
    rc = main(["run", str(ROOT / "strategies" / "minimal.dp"), str(data), "-o", str(tmp_path / "o.jsonl"), "--no-cache", "--address", "auto"])
    assert rc == 2 and "--engine ray" in capsys.readouterr().err


def test_the_core_does_not_import_ray():
    code = (
        "import sys, autodp_dsl, autodp_dsl.cli, autodp_dsl.engine, autodp_dsl.engine.executor, autodp_dsl.commands.run, stdlib_ops\n"
        "import autodp_dsl.engine.distributed\n"  # the Ray engine itself imports Ray only when a run uses it
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_an_operator_error_inside_ray_is_the_operator_s_own():
    pytest.importorskip("ray")
    from ray.data.exceptions import UserCodeException
    from ray.exceptions import RayTaskError

    from autodp_dsl.engine.distributed import original_error

    cause = ValueError("words(output): not a string")
    try:
        try:
            raise RayTaskError("MapBatches(RowPass)", "Traceback ...", cause).as_instanceof_cause()
        except Exception as task:
            raise UserCodeException("UDF failed to process a data block.") from task
    except Exception as e:
        assert original_error(e) is cause
    assert original_error(cause) is cause
    noted = ValueError("words(output): not a string\nFailed to apply UDF transform after 1/1 attempts (total backoff 0.0s).\nTo change ...")
    assert str(original_error(noted)) == "words(output): not a string"  # Ray Data's retry advice is not the operator's


def test_a_global_step_sends_no_text_to_the_decision(data):
    """What leaves a block for a global step's decision: ids, statistics, numeric columns, bucket
    keys; never a string column (no Ray needed: the per-block function runs as is)."""
    from autodp_dsl.engine.distributed import NarrowPass

    frame = Executor().load(data).frame.with_columns(pl.col("output").str.len_chars().alias("n"))
    for path in STRATEGIES:
        if path.stem in NEEDS_MODEL:
            continue
        s = load_strategy(path)
        for step in s.steps:
            if getattr(step, "op", "").startswith(("dedup.", "select.")):
                narrow = pl.from_arrow(NarrowPass(None, step)(frame.to_arrow()))
                assert narrow.height == frame.height and "__rid" in narrow.columns
                assert not [c for c, t in narrow.schema.items() if t in (pl.String, pl.Categorical)], (path.stem, narrow.schema)
                assert "n" in narrow.columns  # a numeric column a score may read


# ---------------------------------------------------------------- Parquet shards


def _shard_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def test_parquet_shards_same_as_local(ray_cluster, data, tmp_path):
    """The workers write the kept rows as shards (one per block, in row order); the rows, ids and
    accounting are the local engine's, and a local run reads the folder as its input."""
    from autodp_dsl.io import read_data

    s = load_strategy(ROOT / "strategies" / "medquad-clean.dp")
    ex = Executor()
    mem = ex.run(s, data)
    out = tmp_path / "kept"
    res = ex.run_ray(s, data, out, block_rows=64, shards=True)
    shards = _shard_files(out)
    assert len(shards) > 1 and sorted(os.listdir(out)) == sorted([".autodp-output", *(p.name for p in shards)])
    assert pl.read_parquet(shards).equals(mem.frame)
    assert res.ids.equals(mem.ids) and res.accounting.kept == mem.accounting.kept
    assert res.accounting.dropped_ids.equals(mem.accounting.dropped_ids)
    acc = res.accounting
    assert acc.balanced and acc.rows_in == acc.kept + acc.dropped + acc.quarantined
    back = read_data(out, required=())
    assert back.format == "shards" and back.frame.drop("__rid").equals(mem.frame)
    # a second run replaces its own folder (no --force), and nothing is left beside it
    ex.run_ray(s, data, out, block_rows=100, shards=True)
    assert pl.read_parquet(_shard_files(out)).equals(mem.frame)
    assert sorted(os.listdir(tmp_path)) == ["kept"]


def test_shards_need_the_ray_engine(data, tmp_path, capsys):
    out = tmp_path / "shards"
    assert main(["run", str(ROOT / "strategies" / "minimal.dp"), str(data), "-o", str(out), "--format", "parquet-shards", "-q", "--no-cache"]) == 2
    assert "--engine ray" in capsys.readouterr().err and not out.exists()


def test_a_worker_writes_its_shard_whole_and_only_into_the_run_s_folder(data, tmp_path):
    """No Ray needed: the per-block writer as a worker runs it."""
    from autodp_dsl.engine.distributed import _write_shard
    from autodp_dsl.io import DataError

    frame = Executor().load(data).frame.slice(40, 30)
    folder = tmp_path / ".out.tmp"
    with pytest.raises(DataError, match="not visible on the Ray node"):  # a node that does not see the folder
        _write_shard(frame.to_arrow(), str(folder))
    assert not folder.exists()  # and it did not create one of its own
    folder.mkdir()
    for _ in range(2):  # a retried task replaces its file
        ids, (name, rows, size) = _write_shard(frame.to_arrow(), str(folder))
    assert os.listdir(folder) == [name] == [f"part-{frame['__rid'][0]:020d}.parquet"]
    assert rows == 30 and size == (folder / name).stat().st_size and pl.from_arrow(ids)["__rid"].equals(frame["__rid"])
    written = pl.read_parquet(folder / name)
    assert "__rid" not in written.columns and written.height == 30
    assert _write_shard(frame.head(0).to_arrow(), str(folder))[1] is None  # an empty block writes nothing


def test_cli_parquet_shards(ray_cluster, data, tmp_path, capsys):
    dp = str(ROOT / "strategies" / "minimal.dp")
    out = tmp_path / "shards"
    rc = main(["run", dp, str(data), "-o", str(out), "--format", "parquet-shards", "--engine", "ray", "-q", "--no-cache", "--report", str(tmp_path / "r.json")])
    assert rc == 0
    local = tmp_path / "local.jsonl"
    assert main(["run", dp, str(data), "-o", str(local), "-q", "--no-cache"]) == 0
    assert pl.read_parquet(_shard_files(out)).equals(pl.read_ndjson(local))
    assert (tmp_path / "shards.dropped.jsonl").read_bytes() == (tmp_path / "local.jsonl.dropped.jsonl").read_bytes()
    assert json.loads((tmp_path / "r.json").read_text())["accounting"]["balanced"]
    # the folder is a local run's input
    again = tmp_path / "again.jsonl"
    assert main(["run", dp, str(out), "-o", str(again), "-q", "--no-cache"]) == 0
    assert pl.read_ndjson(again).equals(pl.read_ndjson(local))
    # a folder autodp did not write is never replaced, even with --force
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    rc = main(["run", dp, str(data), "-o", str(mine), "--format", "parquet-shards", "--engine", "ray", "-q", "--no-cache", "--force"])
    assert rc == 2 and "did not write" in capsys.readouterr().err
    assert os.listdir(mine) == ["notes.txt"]


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("where", ["rows", "statistics", "shard"])
def test_a_worker_killed_mid_run_is_retried(ray_cluster, fault_file, data, tmp_path, where):
    """A worker process killed (by its PID) in the middle of a task: Ray runs the task again and
    the result is the local engine's."""
    s = load_strategy(ROOT / "strategies" / "medquad-clean.dp")
    ex = Executor()
    mem = ex.run(s, data)
    fault_file.write_text(f"{where} kill")
    out = tmp_path / ("kept" if where == "shard" else "kept.parquet")
    try:
        res = ex.run_ray(s, data, out, block_rows=64, shards=where == "shard")
    finally:
        fault_file.unlink(missing_ok=True)
    taken = list(fault_file.parent.glob("arm.taken.*"))
    assert taken, "no worker reached the fault"  # the fault did happen
    for t in taken:
        t.unlink()
    kept = pl.read_parquet(_shard_files(out) if where == "shard" else out)
    assert kept.equals(mem.frame) and res.ids.equals(mem.ids)
    assert res.accounting.dropped_ids.equals(mem.accounting.dropped_ids)


@pytest.mark.parametrize("fmt", ["file", "parquet-shards"])
def test_a_permanent_failure_is_one_line_and_writes_nothing(ray_cluster, fault_file, data, tmp_path, capsys, fmt):
    """An operator failing on every try: the run fails as a local operator failure does (one
    ``error:`` line, exit 1), and the output path is never written."""
    out = tmp_path / ("kept" if fmt != "file" else "kept.parquet")
    args = ["run", str(ROOT / "strategies" / "medquad-clean.dp"), str(data), "-o", str(out), "--engine", "ray", "-q", "--no-cache"]
    fault_file.write_text("rows raise-always")
    try:
        rc = main(args + (["--format", fmt] if fmt != "file" else []))
    finally:
        fault_file.unlink(missing_ok=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("error: RuntimeError: injected failure in rows"), err
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []


# ---------------------------------------------------------------- real data


@pytest.mark.slow
def test_medquad_reference_recipe_same_as_local(ray_cluster, tmp_path):
    """The shared MedQuAD (16,407 pairs; question and answer merged into ``text``, as the
    benchmarks do) through the reference recipe: the same kept rows, dropped ids with reasons and
    per-step counts on Ray as locally."""
    from tests.conftest import SHARED

    src = SHARED / "data" / "medquad" / "medquad.jsonl"
    if not src.exists():
        pytest.skip("needs ../shared/data/medquad")
    data = tmp_path / "medquad.parquet"
    pl.read_ndjson(src, infer_schema_length=None).with_columns(text=pl.col("instruction") + "\n\n" + pl.col("output")).write_parquet(data)
    s = load_strategy(ROOT / "strategies" / "reference-recipe.dp")
    ex = Executor()
    mem = ex.run(s, data)
    out = tmp_path / "kept"
    res = ex.run_ray(s, data, out, block_rows=4000, partitions=2, shards=True)
    assert pl.read_parquet(_shard_files(out)).equals(mem.frame)
    assert res.ids.equals(mem.ids)
    assert res.accounting.dropped_ids.equals(mem.accounting.dropped_ids)
    for a, b in zip(mem.accounting.steps, res.accounting.steps, strict=True):
        assert (a.step, a.key, a.rows_in, a.rows_out, a.modified, a.dropped) == (b.step, b.key, b.rows_in, b.rows_out, b.modified, b.dropped)
    assert all(st.dropped_total for st in res.accounting.steps if st.kind == "global")  # both dedups found duplicates
