"""The persistent, content-addressed cache of node results and statistics.

Layout under the cache root::

    FORMAT                          "autodp-cache 1"
    lock                            flock'ed around eviction and gc only (reads take no lock)
    tmp/                            temporary files of writes in progress
    memo/<key>.json                 small memos: an input file's (path, size, mtime, inode) -> its sha256
    objects/ab/<key>.json           metadata: key, kind, op, created, size, sha256, data file name, ...
    objects/ab/<key>.<sha16>.parquet  the data, named after its own checksum (Parquet) ...
    objects/ab/<key>.<sha16>.arrow    ... or Arrow IPC (wide nested columns: MinHash signatures)

A write goes data first, metadata last, each through a temporary file, ``fsync`` and ``os.replace``;
the entry exists only once its metadata does, and a reader accepts it only when the data's sha256
matches the metadata. A process killed mid-write therefore leaves at most a temporary file or a data
file nobody points to (an *orphan*, removed by ``gc``), never an entry that ``verify`` accepts or a run
uses. Naming data files by checksum means two processes writing the same key never overwrite each
other's bytes; the last metadata wins and both versions are valid. ``last_used`` is the metadata
file's mtime, touched on every hit; eviction removes least recently used entries above the size cap.

Hashing a large entry on every read costs as much as decoding it (the parsed copy of a 64 MB input:
20 ms of sha256 and as much again to read it into memory first). With ``trust_stat`` (the default,
like git's index) the writer sets the data file's mtime one second into the past and records the
file's (size, mtime_ns, inode) in the metadata; a reader that finds the same stat decodes the file
in place without hashing it. Any later write to the file gives it a current mtime, so a changed file
never matches and goes through the full checksum; ``verify`` always hashes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..paths import cache_root

__all__ = ["CacheStore", "Entry", "EntryInfo", "VerifyReport", "GcReport", "DEFAULT_MAX_BYTES", "default_cache_dir", "parse_size"]

FORMAT = "autodp-cache 1"
DEFAULT_MAX_BYTES = 2 * 1024**3
_META_FORMAT = 1
_DATA_SUFFIXES = (".parquet", ".arrow")
_BACKDATE_NS = 1_000_000_000  # written data files get an mtime this far in the past (see the module doc)


def default_cache_dir() -> Path:
    return cache_root()


def parse_size(text: str | int) -> int:
    """``2GiB``, ``500MB``, ``1e9``, ``123`` -> bytes."""
    if isinstance(text, int):
        return text
    t = text.strip().lower().replace(" ", "")
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "k": 1024, "m": 1024**2, "g": 1024**3, "b": 1}
    for u, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if t.endswith(u):
            return int(float(t[: -len(u)]) * mult)
    return int(float(t))


def _crash_point(name: str) -> None:
    """Test hook: ``AUTODP_CACHE_CRASH=<name>`` kills the process at that point of a write."""
    if os.environ.get("AUTODP_CACHE_CRASH") == name:
        os._exit(137)


@dataclass(slots=True)
class EntryInfo:
    key: str
    kind: str
    op: str
    size: int
    created: float
    last_used: float
    meta: dict[str, Any]


@dataclass(slots=True)
class Entry:
    key: str
    meta: dict[str, Any]
    frame: pl.DataFrame


@dataclass(slots=True)
class VerifyReport:
    ok: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (key, problem)
    orphans: list[str] = field(default_factory=list)  # data files no metadata names
    temporary: list[str] = field(default_factory=list)  # leftovers of interrupted writes


@dataclass(slots=True)
class GcReport:
    evicted: int = 0
    evicted_bytes: int = 0
    corrupt_removed: int = 0
    orphans_removed: int = 0
    temporary_removed: int = 0


class CacheStore:
    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, trust_stat: bool = True):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.trust_stat = trust_stat
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fmt = self.root / "FORMAT"
        if not fmt.exists():
            self._atomic_write(fmt, (FORMAT + "\n").encode())
        elif fmt.read_text().strip() != FORMAT:
            raise ValueError(f"{self.root} is not an autodp cache of this version (FORMAT says {fmt.read_text().strip()!r})")

    # ------------------------------------------------------------ paths

    def _meta_path(self, key: str) -> Path:
        return self.objects / key[:2] / f"{key}.json"

    def _dir(self, key: str) -> Path:
        return self.objects / key[:2]

    # ------------------------------------------------------------ writing

    def _atomic_write(self, path: Path, data: bytes, crash: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                if crash:
                    f.write(data[: len(data) // 2])
                    f.flush()
                    _crash_point(crash + "-partial")
                    f.write(data[len(data) // 2 :])
                else:
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def put(self, key: str, frame: pl.DataFrame, meta: dict[str, Any], compression: str = "zstd", fmt: str = "parquet") -> int:
        """Store ``frame`` under ``key`` with ``meta`` (kind, op, counts...). Returns bytes written.
        ``compression``: "zstd" (small) or "lz4" (several times faster to read, for large entries).
        ``fmt="ipc"``: uncompressed Arrow IPC, for incompressible wide columns (signatures) that
        Parquet decodes several times slower."""
        data = _encode(frame, compression, fmt)
        sha = hashlib.sha256(data).hexdigest()
        dname = f"{key}.{sha[:16]}.{'arrow' if fmt == 'ipc' else 'parquet'}"
        dpath = self._dir(key) / dname
        if not self._holds(dpath, sha):
            self._atomic_write(dpath, data, crash="data")
        _crash_point("before-meta")
        now = time.time()
        full = {
            "format": _META_FORMAT,
            "key": key,
            "data": dname,
            "sha256": sha,
            "size": len(data),
            "rows": frame.height,
            "created": now,
            **meta,
        }
        stamp = self._backdate(dpath) if self.trust_stat else None
        if stamp is not None:
            full["stat"] = stamp
        self._atomic_write(self._meta_path(key), json.dumps(full, sort_keys=True).encode(), crash="meta")
        return len(data)

    @staticmethod
    def _holds(dpath: Path, sha: str) -> bool:
        """Whether ``dpath`` already holds these bytes (another writer of the same key and content;
        hashed, because its stat is about to be trusted)."""
        try:
            return hashlib.sha256(dpath.read_bytes()).hexdigest() == sha
        except (FileNotFoundError, IsADirectoryError):
            return False

    @staticmethod
    def _backdate(dpath: Path) -> list[int] | None:
        """Move the data file's mtime one second back and return its (size, mtime_ns, inode): a
        later write to the file sets a current mtime, which can never equal this one."""
        try:
            st = dpath.stat()
            os.utime(dpath, ns=(st.st_atime_ns, time.time_ns() - _BACKDATE_NS))
            return _stamp(dpath.stat())
        except OSError:
            return None

    # ------------------------------------------------------------ reading

    def _read_meta(self, key: str) -> tuple[dict[str, Any] | None, bytes | None]:
        p = self._meta_path(key)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            return None, None
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict) or meta.get("format") != _META_FORMAT or meta.get("key") != key:
                return None, raw
            return meta, raw
        except ValueError:
            return None, raw

    def contains(self, key: str) -> bool:
        """Cheap check (no checksum): metadata present and its data file of the right size."""
        meta, _ = self._read_meta(key)
        if meta is None:
            return False
        try:
            return (self._dir(key) / meta["data"]).stat().st_size == meta["size"]
        except (OSError, KeyError):
            return False

    def peek(self, key: str) -> dict[str, Any] | None:
        """The metadata of an entry, or None (no checksum check)."""
        return self._read_meta(key)[0]

    def get(self, key: str) -> Entry | None:
        """The entry, checksum verified (or its data file unchanged since it was written, see
        ``trust_stat``); a damaged entry is removed and reported as a miss."""
        meta, raw = self._read_meta(key)
        if meta is None:
            if raw is not None:
                self._remove_if_unchanged(key, raw)
            return None
        dpath = self._dir(key) / str(meta.get("data", ""))
        frame = self._read_trusted(dpath, meta) if self.trust_stat else None
        if frame is None:
            try:
                data = dpath.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                self._remove_if_unchanged(key, raw)
                return None
            if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
                self._remove_if_unchanged(key, raw, dpath)
                return None
            try:
                frame = _decode(io.BytesIO(data), dpath.name)
            except Exception:  # checksum matched but unreadable: written by an incompatible writer
                self._remove_if_unchanged(key, raw, dpath)
                return None
        self.touch(key)
        return Entry(key, meta, frame)

    @staticmethod
    def _read_trusted(dpath: Path, meta: dict[str, Any]) -> pl.DataFrame | None:
        """The frame decoded straight from the file when its stat is the one recorded at write time
        (no read into memory, no hash); None sends the caller through the checksum."""
        want = meta.get("stat")
        try:
            if want is None or _stamp(dpath.stat()) != want or want[0] != meta.get("size"):
                return None
            return _decode(dpath, dpath.name)
        except Exception:  # gone, or unreadable: the checksum path decides
            return None

    def touch(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self._meta_path(key))

    def _remove_if_unchanged(self, key: str, raw: bytes | None, dpath: Path | None = None) -> None:
        """Remove a damaged entry, unless another process replaced its metadata meanwhile."""
        p = self._meta_path(key)
        try:
            if raw is not None and p.read_bytes() != raw:
                return
            p.unlink()
        except FileNotFoundError:
            pass
        if dpath is not None:
            with contextlib.suppress(FileNotFoundError):
                dpath.unlink()

    # ------------------------------------------------------------ small memos

    def memo_get(self, key: str) -> dict[str, Any] | None:
        """A small JSON memo (e.g. file stat -> content sha256); None when absent or unreadable."""
        try:
            v = json.loads((self.root / "memo" / f"{key}.json").read_bytes())
            return v if isinstance(v, dict) else None
        except (OSError, ValueError):
            return None

    def memo_put(self, key: str, value: dict[str, Any]) -> None:
        (self.root / "memo").mkdir(exist_ok=True)
        self._atomic_write(self.root / "memo" / f"{key}.json", json.dumps(value, sort_keys=True).encode())

    # ------------------------------------------------------------ listing

    def _meta_files(self) -> Iterator[Path]:
        if not self.objects.exists():
            return
        for sub in sorted(self.objects.iterdir()):
            if sub.is_dir():
                yield from sorted(sub.glob("*.json"))

    def entries(self) -> list[EntryInfo]:
        out = []
        for p in self._meta_files():
            key = p.stem
            meta, _ = self._read_meta(key)
            if meta is None:
                continue
            try:
                mtime = p.stat().st_mtime
            except FileNotFoundError:
                continue
            out.append(EntryInfo(key, meta.get("kind", "?"), meta.get("op", ""), int(meta.get("size", 0)), float(meta.get("created", 0)), mtime, meta))
        return out

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    def stats(self) -> dict[str, Any]:
        es = self.entries()
        by_kind: dict[str, dict[str, int]] = {}
        for e in es:
            k = by_kind.setdefault(e.kind, {"entries": 0, "bytes": 0})
            k["entries"] += 1
            k["bytes"] += e.size
        rep = self.verify(check_data=False)
        return {
            "root": str(self.root),
            "entries": len(es),
            "bytes": sum(e.size for e in es),
            "max_bytes": self.max_bytes,
            "by_kind": by_kind,
            "orphans": len(rep.orphans),
            "temporary": len(rep.temporary),
            "oldest_use": min((e.last_used for e in es), default=None),
            "newest_use": max((e.last_used for e in es), default=None),
        }

    # ------------------------------------------------------------ maintenance

    @contextlib.contextmanager
    def lock(self):
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def verify(self, *, check_data: bool = True, fix: bool = False) -> VerifyReport:
        rep = VerifyReport()
        referenced: set[Path] = set()
        for p in self._meta_files():
            key = p.stem
            meta, raw = self._read_meta(key)
            if meta is None:
                if raw is not None:
                    rep.corrupt.append((key, "unreadable metadata"))
                    if fix:
                        self._remove_if_unchanged(key, raw)
                continue
            dpath = self._dir(key) / str(meta.get("data", ""))
            referenced.add(dpath)
            problem = None
            try:
                if check_data:
                    data = dpath.read_bytes()
                    if len(data) != meta.get("size"):
                        problem = f"size {len(data)} != {meta.get('size')}"
                    elif hashlib.sha256(data).hexdigest() != meta.get("sha256"):
                        problem = "checksum mismatch"
                elif dpath.stat().st_size != meta.get("size"):
                    problem = "size mismatch"
            except (FileNotFoundError, IsADirectoryError):
                problem = "data file missing"
            if problem:
                rep.corrupt.append((key, problem))
                if fix:
                    self._remove_if_unchanged(key, raw, dpath)
            else:
                rep.ok += 1
        if self.objects.exists():
            for sub in self.objects.iterdir():
                if sub.is_dir():
                    for f in sub.iterdir():
                        if f.name.endswith(_DATA_SUFFIXES) and f not in referenced:
                            rep.orphans.append(str(f))
        if self.tmp.exists():
            rep.temporary = [str(f) for f in self.tmp.iterdir()]
        return rep

    def enforce_cap(self, max_bytes: int | None = None, pinned: set[str] | frozenset[str] = frozenset()) -> GcReport:
        """Evict least recently used entries until the cache fits ``max_bytes`` (pinned keys last)."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        rep = GcReport()
        if self._data_bytes() <= cap:  # cheap check (file sizes only) before reading any metadata
            return rep
        with self.lock():
            es = self.entries()
            total = sum(e.size for e in es)
            if total <= cap:
                return rep
            es.sort(key=lambda e: (e.key in pinned, e.last_used))
            for e in es:
                if total <= cap:
                    break
                self._evict(e)
                total -= e.size
                rep.evicted += 1
                rep.evicted_bytes += e.size
        return rep

    def _data_bytes(self) -> int:
        total = 0
        for sub in os.scandir(self.objects):
            if sub.is_dir():
                for f in os.scandir(sub.path):
                    if f.name.endswith(_DATA_SUFFIXES):
                        with contextlib.suppress(FileNotFoundError):
                            total += f.stat().st_size
        return total

    def _evict(self, e: EntryInfo) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._meta_path(e.key).unlink()
        with contextlib.suppress(FileNotFoundError):
            (self._dir(e.key) / e.meta.get("data", "")).unlink()

    def gc(self, max_bytes: int | None = None, grace_seconds: float = 600.0) -> GcReport:
        """Remove damaged entries, orphans and stale temporary files older than ``grace_seconds``
        (younger ones may belong to a write in progress), then evict down to the size cap."""
        now = time.time()
        with self.lock():
            v = self.verify(fix=True)
            rep = GcReport(corrupt_removed=len(v.corrupt))
            for f in v.orphans:
                with contextlib.suppress(FileNotFoundError):
                    if now - os.stat(f).st_mtime >= grace_seconds:
                        os.unlink(f)
                        rep.orphans_removed += 1
            for f in v.temporary:
                with contextlib.suppress(FileNotFoundError):
                    if now - os.stat(f).st_mtime >= grace_seconds:
                        os.unlink(f)
                        rep.temporary_removed += 1
        ev = self.enforce_cap(max_bytes)
        rep.evicted, rep.evicted_bytes = ev.evicted, ev.evicted_bytes
        return rep

    def clear(self) -> int:
        """Remove every entry, orphan and temporary file; returns the number of entries removed."""
        n = 0
        with self.lock():
            for e in self.entries():
                self._evict(e)
                n += 1
            for sub in list(self.objects.iterdir()) if self.objects.exists() else []:
                if sub.is_dir():
                    for f in sub.iterdir():
                        with contextlib.suppress(FileNotFoundError):
                            f.unlink()
                    with contextlib.suppress(OSError):
                        sub.rmdir()
            for d in (self.tmp, self.root / "memo"):
                for f in list(d.iterdir()) if d.exists() else []:
                    with contextlib.suppress(FileNotFoundError):
                        f.unlink()
        return n


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _encode(frame: pl.DataFrame, compression: str, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "ipc":
        frame.write_ipc(buf, compression="uncompressed")
    elif compression == "lz4":
        frame.write_parquet(buf, compression="lz4", statistics=False)
    else:
        frame.write_parquet(buf, compression="zstd", compression_level=3, statistics=False)
    return buf.getvalue()


def _decode(source: Path | io.BytesIO, name: str) -> pl.DataFrame:
    return pl.read_ipc(source) if name.endswith(".arrow") else pl.read_parquet(source)
