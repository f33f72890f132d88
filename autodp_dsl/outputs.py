"""Where autodp may write its outputs, and the writing of data sets.

The rules (docs/language.md, "Outputs"):

- autodp writes only to a path that does not exist yet or that holds an earlier autodp output;
  overwriting any other file needs ``force`` (``--force``);
- it never deletes or replaces a folder it did not write, even with ``force``; a datasets folder it
  writes holds a marker (``.autodp-output``) that lists its files with their identity (inode, size,
  modification time, as the index below), and replacing it removes exactly those files, unchanged;
- it never writes onto an input, nor two outputs of one run onto the same file (compared after
  resolving symlinks, and by inode, so a hard link counts as the same file);
- device nodes, fifos and sockets are refused; the writes themselves follow ``autodp_dsl.atomic``
  (atomic, symlinks written through, modes kept, hard links not split without ``force``).

A file output is known to be autodp's by the index ``.autodp-outputs.json`` in its folder: the name,
inode, size and modification time of each file autodp wrote there. A file changed since, or put
there by someone else under the same name, no longer matches and counts as the user's; so does a
datasets folder holding such a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from .atomic import RefusedWrite, check_target, commit, kind_of, resolve_target, write_bytes_atomic

__all__ = ["INDEX", "MARKER", "SHARDS", "RefusedWrite", "check_output", "check_outputs", "is_ours", "nested_columns", "output_format", "commit_output",
           "commit_folder", "record", "write_data", "write_file"]

INDEX = ".autodp-outputs.json"  # in a folder where autodp wrote file outputs
MARKER = ".autodp-output"  # inside a datasets folder autodp wrote
SHARDS = "parquet-shards"  # a folder of Parquet files, one per block of a Ray run (``--format parquet-shards``)
_FOLDERS = ("hf", SHARDS)  # the formats written as a folder, under the folder rules
_SUFFIXES = ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".parquet", "parquet"), (".csv", "csv"))


def output_format(path: str | Path) -> str:
    """jsonl, json, parquet or csv by the file's suffix; anything else is a datasets folder ("hf")."""
    name = Path(path).name.lower()
    return next((f for s, f in _SUFFIXES if name.endswith(s)), "hf")


# ---------------------------------------------------------------- what is ours


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _read_index(folder: Path) -> dict[str, list[int]]:
    """The index of ``folder`` ({} when there is none); refuses a file of that name that is not one."""
    p = folder / INDEX
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return {}
    except NotADirectoryError:
        return {}
    try:
        if not stat.S_ISREG(st.st_mode):
            raise ValueError
        doc = json.loads(p.read_bytes())
        if doc.get("autodp") != "outputs" or not isinstance(doc.get("files"), dict):
            raise ValueError
        return {k: v for k, v in doc["files"].items() if isinstance(v, list)}
    except (ValueError, OSError, AttributeError):
        raise RefusedWrite(f"{p} exists and is not autodp's index of outputs; refusing to overwrite it") from None


def is_ours(path: str | Path) -> bool:
    """True when ``path`` is a file autodp wrote, unchanged since, or a datasets folder autodp wrote
    that holds nothing else."""
    target = resolve_target(path)
    try:
        st = os.stat(target)
    except OSError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return _own_folder_files(target) is not None
    return stat.S_ISREG(st.st_mode) and _read_index(target.parent).get(target.name) == _identity(st)


def _marker_files(folder: Path) -> dict[str, list[int]] | None:
    """The files the marker of a datasets folder autodp wrote lists, with their identity (None: no
    valid marker)."""
    try:
        marker = folder / MARKER
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return None
        doc = json.loads(marker.read_bytes())
    except (OSError, ValueError):
        return None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("autodp") == "output" and doc.get("version") == 2 else None
    if not isinstance(files, dict) or not all(
            "/" not in n and n not in ("", ".", "..", MARKER) and isinstance(v, list) for n, v in files.items()):
        return None
    return files


def _unchanged(path: Path, ident: list[int]) -> bool:
    """``path`` is the regular file autodp wrote with identity ``ident``, not changed since."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and _identity(st) == ident


def _own_folder_files(folder: Path) -> list[str] | None:
    """The files of a datasets folder autodp wrote, or None when it is not one: no marker, or
    anything in it the marker does not list, or a listed file changed since autodp wrote it."""
    files = _marker_files(folder)
    if files is None:
        return None
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name != MARKER and (e.name not in files or not _unchanged(folder / e.name, files[e.name])):
                    return None
        return list(files)
    except OSError:
        return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock (``flock`` on the folder itself, no lock file), so that for concurrent
    runs the check, the write and the index update of one output are one step."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:  # no such folder yet, or not readable (mode -wx): nothing to serialise with
        yield
        return
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(dfd)  # releases the lock


def _record(target: Path) -> None:
    folder = target.parent
    files = {}
    for name, ident in _read_index(folder).items():  # entries that no longer match their file go
        try:
            if _identity(os.stat(folder / name)) == ident:
                files[name] = ident
        except OSError:
            pass
    files[target.name] = _identity(os.stat(target))
    write_bytes_atomic(folder / INDEX, json.dumps({"autodp": "outputs", "version": 1, "files": files}, sort_keys=True).encode())


def record(path: str | Path) -> None:
    """Note in its folder's index that autodp just wrote the file ``path``."""
    target = resolve_target(path)
    with _locked(target.parent):
        _record(target)


# ---------------------------------------------------------------- checks


def _check_creatable(path: Path, target: Path) -> None:
    anc = target.parent
    while True:
        try:
            st = os.stat(anc)
            break
        except FileNotFoundError:
            anc = anc.parent
        except NotADirectoryError:
            anc = anc.parent
    if not stat.S_ISDIR(st.st_mode):
        raise RefusedWrite(f"cannot write {path}: {anc} is not a folder")
    _probe(anc, path)


def _probe(folder: Path, path: str | Path) -> None:
    """Fail now if ``folder`` does not take new files. ``os.access`` reads only the mode bits, and a
    folder that passes it may still refuse files (``/proc``, a read-only mount, an immutable folder),
    which would fail the run after other outputs were replaced: so create, and remove, an empty file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".autodp-probe.", dir=folder)
    except OSError as e:
        raise PermissionError(f"cannot write {path}: the folder {folder} does not take new files ({e.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def check_output(path: str | Path, force: bool = False, fmt: str | None = None) -> Path:
    """Check that autodp may write the output ``path`` (the rules above); the path it will replace.
    Under the folder's lock: a concurrent run's write and its index entry are seen together."""
    with _locked(resolve_target(path).parent):
        return _check_output(path, force, fmt)


def _check_output(path: str | Path, force: bool = False, fmt: str | None = None) -> Path:
    fmt = fmt or output_format(path)
    target = resolve_target(path)
    if {Path(path).name, target.name} & {INDEX, MARKER}:
        raise RefusedWrite(f"{path}: {target.name} is the name of autodp's own record of its outputs; choose another name")
    if fmt in _FOLDERS and _holds_working_folder(path):
        raise RefusedWrite(f"{path} is the working folder (or holds it); autodp does not replace the folder it runs in: "
                           "name an output folder inside it")
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    if st is None:
        _check_creatable(Path(path), target)
    elif stat.S_ISDIR(st.st_mode):
        if fmt not in _FOLDERS:
            raise RefusedWrite(f"{path} is a folder; refusing to replace it")
        with os.scandir(target) as it:
            empty = next(it, None) is None
        if not empty and _own_folder_files(target) is None:
            raise RefusedWrite(f"{path} is a folder autodp did not write (or holds files it did not write, or changed "
                               "since); refusing to replace it, even with --force: choose another output")
    elif not stat.S_ISREG(st.st_mode):
        raise RefusedWrite(f"{path} is {kind_of(st.st_mode)}; refusing to write to it")
    else:
        if not force and (fmt in _FOLDERS or not is_ours(target)):
            raise RefusedWrite(f"{path} exists and is not an earlier autodp output; pass --force to overwrite it")
        check_target(target, force)  # hard links
    if st is not None:
        _probe(target.parent, path)
    if fmt not in _FOLDERS:
        _read_index(target.parent)  # an unrelated file named like the index is not overwritten
    return target


def _holds_working_folder(path: str | Path) -> bool:
    """A folder output named ``.``/``..``, or that is or holds the working folder: replacing it would
    rename the folder the process (and its relative paths) live in."""
    if Path(path).name in ("", ".", ".."):
        return True
    try:
        cwd = os.getcwd()
    except OSError:
        return False
    real = os.path.realpath(path)
    return real == cwd or _inside(cwd, real)


def _inside(child: str, parent: str) -> bool:
    return child != parent and child.startswith(parent.rstrip(os.sep) + os.sep)


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
    except OSError:
        return None


def _same_inode(a: str, a_ino: tuple[int, int] | None, b: str, b_ino: tuple[int, int] | None) -> bool:
    """Whether ``a`` and ``b`` are one file under two names (a hard link), by the inodes seen earlier
    and confirmed by a fresh look at both: a file replaced meanwhile (a concurrent run re-writing its
    outputs) frees its inode number, which the file system may give at once to the next file created,
    and the earlier look would then pair two different files."""
    return a_ino is not None and a_ino == b_ino and _inode(a) == _inode(b) == a_ino


def check_outputs(outputs: Iterable[tuple], inputs: Iterable[tuple[str, str | Path]], force: bool = False) -> dict[str, Path]:
    """Check every output of one run before anything is written: each may be written (``check_output``),
    none is an input or inside an input folder (nor a folder holding an input), no two are the same file.
    ``outputs`` are (label, path) or (label, path, format) tuples (a None path is left out), the label
    naming the option in messages; ``inputs`` (what, path) or (what, path, is_folder) tuples, e.g.
    ("the input", DATA); ``is_folder`` True for an input that is a folder even before it exists (the
    cache folder), so that no output lands in it on the run that creates it."""
    ins = [(what, str(p), os.path.realpath(p), _inode(str(p)), os.path.isdir(p) or bool(folder and folder[0]))
           for what, p, *folder in inputs]
    seen: list[tuple[str, str, str, tuple[int, int] | None, bool]] = []
    targets: dict[str, Path] = {}
    for label, p, *fmt in outputs:
        if p is None:
            continue
        p = str(p)
        fmt = fmt[0] if fmt else output_format(p)
        real, ino, hf = os.path.realpath(p), _inode(p), fmt in _FOLDERS
        for what, ipath, ireal, iino, idir in ins:
            if real == ireal or _same_inode(p, ino, ipath, iino):
                raise RefusedWrite(f"{label} {p} is {what} {ipath}; autodp never writes onto it")
            if idir and _inside(real, ireal):
                raise RefusedWrite(f"{label} {p} is inside {what} {ipath}; autodp never writes into it")
            if _inside(ireal, real):
                raise RefusedWrite(f"{label} {p} holds {what} {ipath}; autodp never writes onto it")
        for olabel, opath, oreal, oino, ohf in seen:
            if real == oreal or _same_inode(p, ino, opath, oino):
                raise RefusedWrite(f"{label} {p} and {olabel} {opath} name the same file; give each output its own path")
            if (ohf and _inside(real, oreal)) or (hf and _inside(oreal, real)):
                raise RefusedWrite(f"{label} {p} and {olabel} {opath}: one is inside the other's folder; give each output its own path")
        targets[label] = check_output(p, force, fmt)
        seen.append((label, p, real, ino, hf))
    return targets


# ---------------------------------------------------------------- writing


def write_data(frame: pl.DataFrame, path: str | Path, fmt: str | None = None, force: bool = False) -> Path:
    """Write every column of ``frame`` atomically under the output rules, in the format of the path's
    extension: .jsonl/.ndjson, .json (an array), .parquet, .csv, or a folder (Hugging Face datasets
    layout). The path written (a symlink's target). A ``RunResult.frame`` holds only the data's
    columns, among them any input column named ``__*`` (the engine's own columns never leave it)."""
    fmt = fmt or output_format(path)
    if fmt not in ("hf", "jsonl", "json", "parquet", "csv"):
        raise ValueError(f"unknown output format {fmt!r}")
    check_output(path, force, fmt)  # refuse before serialising
    if fmt == "hf":
        return _write(path, fmt, force, None, lambda target: _write_hf(frame, target))
    buf = io.BytesIO()
    if fmt == "jsonl":
        frame.write_ndjson(buf)
    elif fmt == "json":
        frame.write_json(buf)
    elif fmt == "csv":  # CSV has no lists or structs: those columns are written as JSON text
        frame.with_columns(pl.col(c).map_elements(_json_text, return_dtype=pl.String) for c in nested_columns(frame)).write_csv(buf)
    else:
        frame.write_parquet(buf, compression="zstd")
    return _write(path, fmt, force, buf.getvalue())


def _json_text(value: Any) -> str:
    return json.dumps(value.to_list() if isinstance(value, pl.Series) else value, ensure_ascii=False, default=str)


def nested_columns(frame: pl.DataFrame) -> list[str]:
    """The list, array and struct columns of ``frame``: a CSV output holds them as JSON text."""
    return [c for c, t in frame.schema.items() if isinstance(t, pl.List | pl.Array | pl.Struct)]


def write_file(path: str | Path, data: bytes, force: bool = False) -> Path:
    """Write a non-data output (a report) under the output rules."""
    check_output(path, force, "json")
    return _write(path, "json", force, data)


def commit_output(tmp: str | Path, path: str | Path, force: bool = False) -> Path:
    """Move a finished temporary file (written beside ``path``) onto the output ``path`` under the rules."""
    with _locked(resolve_target(path).parent):
        target = _check_output(path, force)
        commit(tmp, target, force)
        _record(target)
    return target


def _write(path: str | Path, fmt: str, force: bool, data: bytes | None, write_folder: Callable[[Path], None] | None = None) -> Path:
    """Check again and write under the folder's lock: another run may have written meanwhile."""
    resolve_target(path).parent.mkdir(parents=True, exist_ok=True)
    with _locked(resolve_target(path).parent):
        target = _check_output(path, force, fmt)
        try:
            if write_folder is not None:
                write_folder(target)
            else:
                write_bytes_atomic(target, data, force)
                _record(target)
        except OSError as e:  # name the output, not the temporary file beside it
            raise OSError(f"cannot write {path}: {e.strerror or e}") from None
    return target


def _hf_feature(dt) -> dict[str, Any]:
    if isinstance(dt, pl.List | pl.Array):
        return {"feature": _hf_feature(dt.inner), "_type": "Sequence"}
    if isinstance(dt, pl.Struct):
        return {f.name: _hf_feature(f.dtype) for f in dt.fields}
    names = {
        pl.String: "large_string", pl.Boolean: "bool", pl.Int8: "int8", pl.Int16: "int16", pl.Int32: "int32", pl.Int64: "int64",
        pl.UInt8: "uint8", pl.UInt16: "uint16", pl.UInt32: "uint32", pl.UInt64: "uint64", pl.Float32: "float32", pl.Float64: "float64", pl.Null: "null",
    }
    return {"dtype": names.get(dt, "large_string"), "_type": "Value"}


def _write_hf(frame: pl.DataFrame, p: Path) -> None:
    """A ``save_to_disk``-style folder: one arrow stream file plus dataset_info.json, state.json and
    the marker, swapped in by ``_swap_in``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent))
    try:
        name = "data-00000-of-00001.arrow"
        frame.write_ipc_stream(tmp / name, compat_level=pl.CompatLevel.oldest())
        info = {"citation": "", "description": "", "features": {c: _hf_feature(t) for c, t in frame.schema.items()}, "homepage": "", "license": ""}
        (tmp / "dataset_info.json").write_text(json.dumps(info, indent=2))
        state = {
            "_data_files": [{"filename": name}],
            "_fingerprint": hashlib.sha256((tmp / name).read_bytes()).hexdigest()[:16],
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": None,
        }
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder
        raise
    _swap_in(tmp, p)


def _swap_in(tmp: Path, p: Path) -> None:
    """Make the finished folder ``tmp`` (beside ``p``, written by autodp: every file in it is
    listed in the marker written here) the output ``p``. An earlier folder at ``p`` (checked to be
    autodp's, or empty) is swapped out and its listed files removed; whatever else appeared in it
    meanwhile is kept, in the renamed folder. ``tmp`` is removed on failure."""
    parent = p.parent
    try:
        files = {e.name: _identity(e.stat(follow_symlinks=False)) for e in os.scandir(tmp) if e.name != MARKER}  # a rename keeps them
        (tmp / MARKER).write_text(json.dumps({"autodp": "output", "version": 2, "files": files}))
        try:
            old = os.lstat(p)
        except FileNotFoundError:
            old = None
        if old is None:
            os.rename(tmp, p)  # fails, rather than replaces, if a folder with files appeared meanwhile
            return
        if stat.S_ISDIR(old.st_mode):
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
        aside = Path(tempfile.mkdtemp(prefix=f".{p.name}.old.", dir=parent))
        os.replace(p, aside / "x")
        os.replace(tmp, p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder
        raise
    _remove_aside(aside, p)


def commit_folder(tmp: str | Path, path: str | Path, force: bool = False, fmt: str = SHARDS) -> Path:
    """Make the finished folder ``tmp`` (created by autodp beside ``path``, e.g. with
    ``tempfile.mkdtemp(dir=parent)``, holding only files it wrote) the folder output ``path``,
    under the rules: checked again under the lock, an earlier autodp folder replaced as above."""
    target = resolve_target(path)
    with _locked(target.parent):
        try:
            target = _check_output(path, force, fmt)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _swap_in(Path(tmp), target)
    return target


def _remove_aside(aside: Path, p: Path) -> None:
    """Remove the replaced output: the files autodp listed in it, unchanged, then the folders, only if
    empty (a file edited since the check stays, in the folder kept aside)."""
    x = aside / "x"
    if x.is_dir():
        files = _marker_files(x) or {}
        for n, ident in files.items():
            if _unchanged(x / n, ident):
                os.unlink(x / n)
        if all(not os.path.lexists(x / n) for n in files):
            try:
                os.unlink(x / MARKER)
            except FileNotFoundError:
                pass
    elif x.exists() or x.is_symlink():
        os.unlink(x)  # a file at a folder output's path, replaced with --force
    try:
        if x.is_dir():
            os.rmdir(x)
        os.rmdir(aside)
    except OSError:
        print(f"warning: kept {aside}: files appeared or changed in the old {p} while it was replaced", file=sys.stderr)
