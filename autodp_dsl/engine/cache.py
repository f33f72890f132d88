"""The persistent, content-addressed cache of node results and statistics.

Layout under the cache root (folders 0700, files 0600, like the run's outputs)::

    FORMAT                          "autodp-cache 2": written when autodp creates the cache
    lock                            flock'ed around eviction and gc only (reads take no lock)
    tmp/                            temporary files of writes in progress
    memo/<key>.json                 small memos: an input file's (path, size, mtime, inode) -> its
                                    xxh3-128 and sha256
    objects/ab/<key>.json           metadata: key, kind, op, created, size, xxh3, data file name, ...
    objects/ab/<key>.<xxh16>.parquet  the data, named after its own checksum (Parquet) ...
    objects/ab/<key>.<xxh16>.arrow    ... or Arrow IPC (wide nested columns: MinHash signatures)

A write goes data first, metadata last, each through a temporary file, ``fsync`` and ``os.replace``;
the entry exists only once its metadata does, and a reader accepts it only when the data's checksum
(xxh3-128, see ``autodp_dsl.checksum``) matches the metadata -- on every read: a flipped byte in a
file whose size and mtime are unchanged is caught, the entry removed and recomputed, with a warning.
A process killed mid-write therefore leaves at most a temporary file or a data file nobody points
to (an *orphan*, removed by ``gc``), never an entry that ``verify`` accepts or a run uses. Naming
data files by checksum means two processes writing the same key never overwrite each other's bytes;
the last metadata wins and both versions are valid. ``last_used`` is the metadata file's mtime,
touched on every hit; eviction removes least recently used entries above the size cap.

**A trust boundary.** A folder becomes a cache only when autodp creates it: a missing or empty
folder (or one holding only what other parts of autodp keep beside the cache: ``ops/``,
``model-memo/``, ``models/``) is initialised; any other folder is refused (``NotACache``) and nothing
in it is read, written or deleted. A cache of the previous format (``FORMAT`` "autodp-cache 1",
which that version also wrote into any folder it was pointed at) is migrated only when it has
exactly that version's layout and every metadata file is valid: each entry's sha256 is checked and
its xxh3-128 recorded; otherwise it is refused with a message to remove it. Every path taken from
metadata is the entry's own file name in its own sub-folder (a name like ``../../victim`` or an
absolute path is damaged metadata; sub-folders and files that are symbolic links are never followed),
and maintenance deletes only files with the names autodp gives them. What this does *not* stop:
someone who can write anything into the cache folder can also write matching checksums, so the
cache is exactly as trustworthy as the permissions on its folder.

**Failures.** While a run uses the cache, a cache that stops working (made read-only, raced by
``autodp cache clear``, an unreadable entry) is dropped with one warning and the run goes on without
it; it is never blamed on a step. ``verify``, ``gc`` and ``clear`` raise ``OSError`` for the command
to report in one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import re
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from autodp_backends.atomic import publish

from ..checksum import digest
from ..errors import NoCache, NotACache
from ..paths import cache_root

__all__ = ["CacheStore", "NotACache", "NoCache", "Entry", "EntryInfo", "VerifyReport", "GcReport", "DEFAULT_MAX_BYTES", "default_cache_dir", "parse_size"]

FORMAT = "autodp-cache 2"
_FORMAT_1 = "autodp-cache 1"  # the previous version: sha256 checksums, world-readable files
DEFAULT_MAX_BYTES = 2 * 1024**3
_META_FORMAT = 2
_DATA_SUFFIXES = (".parquet", ".arrow")
_KEY = re.compile(r"[0-9a-f]{64}")
_SUB = re.compile(r"[0-9a-f]{2}")
_META_NAME = re.compile(r"([0-9a-f]{64})\.json")
_DATA_NAME = re.compile(r"([0-9a-f]{64})\.[0-9a-f]{16}\.(?:parquet|arrow)")
_TMP_NAME = re.compile(r"[^/]+\.[0-9]+\.[0-9a-f]{8}\.tmp")
_OWN = frozenset({"FORMAT", "lock", "tmp", "memo", "objects"})
# what other parts of autodp keep in the same folder (``paths.cache_root``): the operator manifest,
# the model memo, downloaded models and the evaluator's memo (autodp_eval's ``eval/``); a folder
# holding only these may become a cache
_NEIGHBOURS = frozenset({"ops", "model-memo", "models", "eval"})
_FILE_MODE, _DIR_MODE = 0o600, 0o700





def default_cache_dir() -> Path:
    return cache_root()


def parse_size(text: str | int) -> int:
    """``2GiB``, ``500MB``, ``1e9``, ``123`` -> bytes; ``ValueError`` (saying why) for anything that
    is not a finite size of zero or more bytes (``abc``, ``-5``, ``1e400``, ``nan``)."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"a size cannot be negative, got {text}")
        return text
    t = text.strip().lower().replace(" ", "")
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "k": 1024, "m": 1024**2, "g": 1024**3, "b": 1}
    number, mult = t, 1
    for u, m in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if t.endswith(u):
            number, mult = t[: -len(u)], m
            break
    try:
        value = float(number) * mult
    except ValueError:
        raise ValueError(f"expected a size such as 500MB or 2GiB, got {text!r}") from None
    if not math.isfinite(value) or value > 2**63:
        raise ValueError(f"expected a finite size, got {text!r}")
    if value < 0:
        raise ValueError(f"a size cannot be negative, got {text!r}")
    return int(value)


def _crash_point(name: str) -> None:
    """Test hook: ``AUTODP_CACHE_CRASH=<name>`` kills the process at that point of a write."""
    if os.environ.get("AUTODP_CACHE_CRASH") == name:
        os._exit(137)


def warn_stderr(message: str) -> None:
    """How cache problems are said by default: one ``warning:`` line."""
    print(f"warning: {message}", file=sys.stderr)


def _read_file(path: Path) -> bytes:
    """A regular file's bytes, never through a symbolic link (``OSError`` otherwise)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read()
    finally:
        if fd >= 0:
            os.close(fd)


def _real_dir(path: Path) -> bool:
    """A folder and not a symbolic link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _files(folder: Path) -> Iterator[os.DirEntry]:
    """The entries of ``folder`` (none when it is missing or not a real folder)."""
    if not _real_dir(folder):
        return
    with os.scandir(folder) as it:
        yield from sorted(it, key=lambda e: e.name)


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
    foreign: list[str] = field(default_factory=list)  # what autodp did not write there: never touched


@dataclass(slots=True)
class GcReport:
    evicted: int = 0
    evicted_bytes: int = 0
    corrupt_removed: int = 0
    orphans_removed: int = 0
    temporary_removed: int = 0
    foreign: list[str] = field(default_factory=list)


class CacheStore:
    """The cache in folder ``root`` (created, initialised or migrated here; ``NotACache`` when the
    folder is something else). ``warn`` receives one-line warnings (default: stderr).
    ``create=False`` (inspection and maintenance): a missing folder, or one without a cache's FORMAT
    file, is ``NoCache`` and left untouched -- only what stores results creates a cache."""

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, *, warn: Callable[[str], None] | None = None, create: bool = True):
        self.root = Path(root).expanduser().absolute()
        self.max_bytes = int(max_bytes)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.memo = self.root / "memo"
        self.warn = warn or warn_stderr
        self.broken: str | None = None  # why a run stopped using the cache (see ``_give_up``)
        self._create = create
        self._open()

    # ------------------------------------------------------------ opening

    def _open(self) -> None:
        try:
            st = os.stat(self.root)  # the root itself may be a link the user made; nothing inside may
        except FileNotFoundError:
            if not self._create:
                raise NoCache(f"no cache at {self.root}") from None
            os.makedirs(self.root, mode=_DIR_MODE)
            self._initialise()
            return
        if not stat.S_ISDIR(st.st_mode):
            raise NotACache(f"{self.root} is not a folder")
        marker = self._marker()
        if marker is None and not self._create:
            raise NoCache(f"no cache at {self.root}")
        if marker == FORMAT:
            for d in (self.objects, self.tmp, self.memo):
                if os.path.lexists(d) and not _real_dir(d):
                    raise NotACache(f"{d} is not a folder autodp made; remove the cache folder {self.root}")
                if not os.path.lexists(d):
                    d.mkdir(mode=_DIR_MODE)  # e.g. after someone removed tmp/
        elif marker == _FORMAT_1:
            self._migrate()
        elif marker is not None:
            raise NotACache(f"{self.root} is not an autodp cache of this version (FORMAT says {marker[:40]!r})")
        else:
            # empty folders of our own names: an initialisation that was interrupted
            foreign = sorted(n for n in set(os.listdir(self.root)) - _NEIGHBOURS if not (n in _OWN and _real_dir(self.root / n) and not os.listdir(self.root / n)))
            if foreign:
                raise NotACache(f"{self.root} is not an autodp cache (no FORMAT file, and it holds {foreign[0]!r}); use a new or empty folder")
            self._initialise()

    def _marker(self) -> str | None:
        try:
            return _read_file(self.root / "FORMAT")[:200].decode("utf-8", "replace").strip()
        except FileNotFoundError:
            return None
        except OSError as e:  # a folder, a link, unreadable
            raise NotACache(f"{self.root}/FORMAT is not a file autodp wrote ({e.strerror or e})") from e

    def _initialise(self) -> None:
        os.chmod(self.root, _DIR_MODE)  # copies of the data's rows: private, like the outputs
        self.tmp.mkdir(mode=_DIR_MODE, exist_ok=True)
        self._atomic_write(self.root / "FORMAT", (FORMAT + "\n").encode())
        for d in (self.objects, self.memo):
            d.mkdir(mode=_DIR_MODE, exist_ok=True)

    def _migrate(self) -> None:
        """A cache of the previous format: migrated when it has exactly its layout and valid
        metadata (each entry's sha256 checked, its xxh3-128 recorded, files made private)."""
        metas = self._layout_1()
        with self.lock():
            for key, meta in metas:
                dpath = self._data_path(key, meta)
                try:
                    data = _read_file(dpath) if dpath is not None else b""
                    ok = dpath is not None and len(data) == meta.get("size") and hashlib.sha256(data).hexdigest() == meta.get("sha256")
                except FileNotFoundError:
                    ok = False
                if not ok:
                    self._remove(key, dpath)
                    continue
                os.chmod(dpath, _FILE_MODE)
                new = {k: v for k, v in meta.items() if k not in ("sha256", "stat")}
                self._atomic_write(self._meta_path(key), json.dumps({**new, "format": _META_FORMAT, "xxh3": digest(data)}, sort_keys=True).encode())
            for e in _files(self.memo):  # memos of the previous format lack the content checksum
                os.unlink(e.path)
            # private, like the outputs: every file and folder, each checked by _layout_1 not to be a link
            files = [f.path for kind, f in self._scan() if kind != "foreign"] + [f.path for f in _files(self.tmp)]
            for path in [*files, *(p for p in (self.root / "lock",) if p.exists())]:
                os.chmod(path, _FILE_MODE)
            for d in (self.root, self.objects, self.tmp, self.memo, *(self.objects / e.name for e in _files(self.objects))):
                if d.exists():
                    os.chmod(d, _DIR_MODE)
            self.memo.mkdir(mode=_DIR_MODE, exist_ok=True)
            self._atomic_write(self.root / "FORMAT", (FORMAT + "\n").encode())

    def _layout_1(self) -> list[tuple[str, dict[str, Any]]]:
        """Check that the folder is exactly a cache of format 1; its entries' metadata."""

        def refuse(why: str) -> NotACache:
            return NotACache(
                f"{self.root} has the FORMAT file of an older autodp cache but not its layout ({why}), so it is not used:"
                " if it is an old cache, remove the folder; if not, an older autodp wrote that FORMAT file into it: remove just that file"
            )

        extra = sorted(set(os.listdir(self.root)) - _OWN - _NEIGHBOURS)
        if extra:
            raise refuse(f"it holds {extra[0]!r}")
        for d in (self.objects, self.tmp, self.memo):
            if os.path.lexists(d) and not _real_dir(d):
                raise refuse(f"{d.name} is not a folder")
        lock = self.root / "lock"
        if os.path.lexists(lock) and not stat.S_ISREG(os.lstat(lock).st_mode):
            raise refuse("lock is not a file")
        metas = []
        for sub in _files(self.objects):
            if not (_SUB.fullmatch(sub.name) and sub.is_dir(follow_symlinks=False)):
                raise refuse(f"objects/{sub.name} is not one of its folders")
            for f in _files(Path(sub.path)):
                m = _META_NAME.fullmatch(f.name) or _DATA_NAME.fullmatch(f.name)
                if not (m and m.group(1)[:2] == sub.name and f.is_file(follow_symlinks=False)):
                    raise refuse(f"objects/{sub.name}/{f.name} is not one of its files")
                if f.name.endswith(".json"):
                    try:
                        meta = json.loads(_read_file(Path(f.path)))
                    except ValueError:
                        raise refuse(f"objects/{sub.name}/{f.name} is not valid metadata") from None
                    key = m.group(1)
                    if not (isinstance(meta, dict) and meta.get("format") == 1 and meta.get("key") == key and self._data_path(key, meta) is not None):
                        raise refuse(f"objects/{sub.name}/{f.name} is not valid metadata")
                    metas.append((key, meta))
        for folder, pattern in ((self.tmp, _TMP_NAME), (self.memo, _META_NAME)):
            for f in _files(folder):
                if not (pattern.fullmatch(f.name) and f.is_file(follow_symlinks=False)):
                    raise refuse(f"{folder.name}/{f.name} is not one of its files")
        return metas

    # ------------------------------------------------------------ paths

    def _meta_path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.objects / key[:2] / f"{key}.json"

    def _dir(self, key: str) -> Path:
        return self._meta_path(key).parent

    def _data_path(self, key: str, meta: dict[str, Any]) -> Path | None:
        """The entry's data file: a name of the entry's own (``<key>.<xxh16>.parquet|arrow``) in its
        own folder; None for anything else (``../../victim``, an absolute path): damaged metadata."""
        name = meta.get("data")
        m = _DATA_NAME.fullmatch(name) if isinstance(name, str) else None
        if m is None or m.group(1) != key:
            return None
        return self._dir(key) / name

    # ------------------------------------------------------------ writing

    def _atomic_write(self, path: Path, data: bytes, crash: str | None = None) -> None:
        path.parent.mkdir(mode=_DIR_MODE, exist_ok=True)
        if not _real_dir(path.parent):
            raise NotADirectoryError(f"{path.parent} is not a folder autodp made")
        tmp = self.tmp / f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, _FILE_MODE)
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
            publish(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put(self, key: str, frame: pl.DataFrame, meta: dict[str, Any], compression: str = "zstd", fmt: str = "parquet") -> int:
        """Store ``frame`` under ``key`` with ``meta`` (kind, op, counts...). Returns bytes written
        (0 when the cache is out of use, see ``_give_up``).
        ``compression``: "zstd" (small) or "lz4" (several times faster to read, for large entries).
        ``fmt="ipc"``: uncompressed Arrow IPC, for incompressible wide columns (signatures) that
        Parquet decodes several times slower."""
        if self.broken:
            return 0
        data = _encode(frame, compression, fmt)
        xxh = digest(data)
        dname = f"{key}.{xxh[:16]}.{'arrow' if fmt == 'ipc' else 'parquet'}"
        try:
            dpath = self._dir(key) / dname
            if not self._holds(dpath, xxh):
                self._atomic_write(dpath, data, crash="data")
            _crash_point("before-meta")
            full = {"format": _META_FORMAT, "key": key, "data": dname, "xxh3": xxh, "size": len(data), "rows": frame.height, "created": time.time(), **meta}
            self._atomic_write(self._meta_path(key), json.dumps(full, sort_keys=True).encode(), crash="meta")
        except OSError as e:
            self._give_up(e)
            return 0
        return len(data)

    @staticmethod
    def _holds(dpath: Path, xxh: str) -> bool:
        """Whether ``dpath`` already holds these bytes (another writer of the same key and content)."""
        try:
            return digest(_read_file(dpath)) == xxh
        except OSError:  # absent, or not a regular file (a link): replaced by the write
            return False

    def _give_up(self, e: BaseException) -> None:
        """Stop using the cache for the rest of this process's work, with one warning: a cache
        problem (a read-only folder, a concurrent ``cache clear``, an unreadable file) must not
        fail a run that can do without it."""
        if self.broken is None:
            self.broken = f"{type(e).__name__}: {e}"
            self.warn(f"cache {self.root} is not usable ({getattr(e, 'strerror', None) or e}); going on without it")

    # ------------------------------------------------------------ reading

    def _read_meta(self, key: str) -> tuple[dict[str, Any] | None, bytes | None]:
        path = self._meta_path(key)
        if not _real_dir(path.parent):  # absent, or a link leading out of the cache: no entry
            return None, None
        try:
            raw = _read_file(path)
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
        if self.broken:
            return False
        try:
            meta, _ = self._read_meta(key)
            dpath = self._data_path(key, meta) if meta is not None else None
            return dpath is not None and os.lstat(dpath).st_size == meta["size"]
        except (OSError, KeyError):
            return False

    def peek(self, key: str) -> dict[str, Any] | None:
        """The metadata of an entry, or None (no checksum check)."""
        try:
            return None if self.broken else self._read_meta(key)[0]
        except OSError:
            return None

    def get(self, key: str) -> Entry | None:
        """The entry, its checksum verified; a damaged entry is removed (with a warning) and
        reported as a miss, and a cache that cannot be read is given up (``_give_up``)."""
        if self.broken:
            return None
        try:
            meta, raw = self._read_meta(key)
            if meta is None:
                if raw is not None:
                    self._damaged(key, raw, None, "unreadable metadata")
                return None
            dpath = self._data_path(key, meta)
            if dpath is None:
                self._damaged(key, raw, None, "its metadata names a file outside the entry")
                return None
            try:
                data = _read_file(dpath)
            except FileNotFoundError:
                self._damaged(key, raw, None, "data file missing")
                return None
            if len(data) != meta.get("size") or digest(data) != meta.get("xxh3"):
                self._damaged(key, raw, dpath, "checksum mismatch")
                return None
            try:
                frame = _decode(io.BytesIO(data), dpath.name)
            except Exception:  # checksum matched but unreadable: written by an incompatible writer
                self._damaged(key, raw, dpath, "undecodable data")
                return None
        except OSError as e:
            self._give_up(e)
            return None
        self.touch(key)
        return Entry(key, meta, frame)

    def _damaged(self, key: str, raw: bytes, dpath: Path | None, problem: str) -> None:
        self.warn(f"cache entry {key[:16]} is damaged ({problem}): removed, recomputing")
        self._remove_if_unchanged(key, raw, dpath)

    def touch(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self._meta_path(key), follow_symlinks=False)

    def _remove_if_unchanged(self, key: str, raw: bytes | None, dpath: Path | None = None) -> None:
        """Remove a damaged entry, unless another process replaced its metadata meanwhile."""
        try:
            if raw is not None and _read_file(self._meta_path(key)) != raw:
                return
        except FileNotFoundError:
            pass
        self._remove(key, dpath)

    def _remove(self, key: str, dpath: Path | None) -> None:
        """Unlink an entry's metadata and data file (``dpath`` from ``_data_path``: inside the cache;
        unlink never follows a link, and the sub-folder is checked not to be one)."""
        if not _real_dir(self._dir(key)):
            return
        for p in (self._meta_path(key), dpath):
            if p is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)

    # ------------------------------------------------------------ small memos

    def _memo_path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a memo key: {key!r}")
        return self.memo / f"{key}.json"

    def memo_get(self, key: str) -> dict[str, Any] | None:
        """A small JSON memo (e.g. file stat -> content checksums); None when absent or unreadable."""
        if self.broken:
            return None
        try:
            v = json.loads(_read_file(self._memo_path(key)))
            return v if isinstance(v, dict) else None
        except (OSError, ValueError):
            return None

    def memo_put(self, key: str, value: dict[str, Any]) -> None:
        if self.broken:
            return
        try:
            self._atomic_write(self._memo_path(key), json.dumps(value, sort_keys=True).encode())
        except OSError as e:
            self._give_up(e)

    # ------------------------------------------------------------ listing

    def _scan(self) -> Iterator[tuple[str, os.DirEntry]]:
        """("meta" | "data" | "foreign", entry) for everything under ``objects/``; only regular
        files with autodp's names in real sub-folders named after their keys are "meta" or "data"."""
        for sub in _files(self.objects):
            if not (_SUB.fullmatch(sub.name) and sub.is_dir(follow_symlinks=False)):
                yield "foreign", sub
                continue
            for f in _files(Path(sub.path)):
                m = _META_NAME.fullmatch(f.name) or _DATA_NAME.fullmatch(f.name)
                if m is None or m.group(1)[:2] != sub.name or not f.is_file(follow_symlinks=False):
                    yield "foreign", f
                else:
                    yield ("meta" if f.name.endswith(".json") else "data"), f

    def _meta_files(self) -> Iterator[Path]:
        for kind, f in self._scan():
            if kind == "meta":
                yield Path(f.path)

    def entries(self) -> list[EntryInfo]:
        out = []
        for p in self._meta_files():
            key = p.name[:-5]
            meta, _ = self._read_meta(key)
            if meta is None:
                continue
            try:
                mtime = p.lstat().st_mtime
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
            "foreign": len(rep.foreign),
            "oldest_use": min((e.last_used for e in es), default=None),
            "newest_use": max((e.last_used for e in es), default=None),
        }

    # ------------------------------------------------------------ maintenance

    @contextlib.contextmanager
    def lock(self):
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def verify(self, *, check_data: bool = True, fix: bool = False) -> VerifyReport:
        rep = VerifyReport()
        referenced: set[str] = set()
        data_files: list[str] = []
        for kind, f in self._scan():
            if kind == "foreign":
                rep.foreign.append(f.path)
                continue
            if kind == "data":
                data_files.append(f.path)
                continue
            key = f.name[:-5]
            meta, raw = self._read_meta(key)
            if meta is None:
                if raw is not None:
                    rep.corrupt.append((key, "unreadable metadata"))
                    if fix:
                        self._remove_if_unchanged(key, raw)
                continue
            dpath = self._data_path(key, meta)
            problem = None
            if dpath is None:
                problem = "metadata names a file outside the entry"
            else:
                referenced.add(str(dpath))
                try:
                    if check_data:
                        data = _read_file(dpath)
                        if len(data) != meta.get("size"):
                            problem = f"size {len(data)} != {meta.get('size')}"
                        elif digest(data) != meta.get("xxh3"):
                            problem = "checksum mismatch"
                    elif os.lstat(dpath).st_size != meta.get("size"):
                        problem = "size mismatch"
                except FileNotFoundError:
                    problem = "data file missing"
            if problem:
                rep.corrupt.append((key, problem))
                if fix:
                    self._remove_if_unchanged(key, raw, dpath)
            else:
                rep.ok += 1
        rep.orphans = [p for p in data_files if p not in referenced]
        for f in _files(self.tmp):
            (rep.temporary if _TMP_NAME.fullmatch(f.name) and f.is_file(follow_symlinks=False) else rep.foreign).append(f.path)
        for f in _files(self.memo):
            if not (_META_NAME.fullmatch(f.name) and f.is_file(follow_symlinks=False)):
                rep.foreign.append(f.path)
        return rep

    def enforce_cap(self, max_bytes: int | None = None, pinned: set[str] | frozenset[str] = frozenset()) -> GcReport:
        """Evict least recently used entries until the cache fits ``max_bytes`` (pinned keys last).
        A run's call: a cache that cannot be changed is given up, not raised."""
        if self.broken:
            return GcReport()
        try:
            return self._enforce_cap(max_bytes, pinned)
        except OSError as e:
            self._give_up(e)
            return GcReport()

    def _enforce_cap(self, max_bytes: int | None, pinned: set[str] | frozenset[str]) -> GcReport:
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
                self._remove(e.key, self._data_path(e.key, e.meta))
                total -= e.size
                rep.evicted += 1
                rep.evicted_bytes += e.size
        return rep

    def _data_bytes(self) -> int:
        total = 0
        for kind, f in self._scan():
            if kind == "data":
                with contextlib.suppress(FileNotFoundError):
                    total += f.stat(follow_symlinks=False).st_size
        return total

    def gc(self, max_bytes: int | None = None, grace_seconds: float = 600.0) -> GcReport:
        """Remove damaged entries, orphans and stale temporary files older than ``grace_seconds``
        (younger ones may belong to a write in progress), then evict down to the size cap. What
        autodp did not write is left alone and listed in ``foreign``."""
        now = time.time()
        with self.lock():
            v = self.verify(fix=True)
            rep = GcReport(corrupt_removed=len(v.corrupt), foreign=v.foreign)
            for files, counter in ((v.orphans, "orphans_removed"), (v.temporary, "temporary_removed")):
                for f in files:
                    with contextlib.suppress(FileNotFoundError):
                        if now - os.lstat(f).st_mtime >= grace_seconds:
                            os.unlink(f)
                            setattr(rep, counter, getattr(rep, counter) + 1)
        ev = self._enforce_cap(max_bytes, frozenset())
        rep.evicted, rep.evicted_bytes = ev.evicted, ev.evicted_bytes
        return rep

    def clear(self) -> tuple[int, list[str]]:
        """Remove every entry, orphan, temporary file and memo: only files with the names autodp
        gives them. Returns the number of entries removed and what was left alone (not autodp's)."""
        n = 0
        foreign: list[str] = []
        with self.lock():
            for kind, f in list(self._scan()):
                if kind == "foreign":
                    foreign.append(f.path)
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f.path)
                    n += kind == "meta"
            for sub in _files(self.objects):
                if _SUB.fullmatch(sub.name) and sub.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(sub.path)  # only when empty: a foreign file keeps its folder
            for folder, pattern in ((self.tmp, _TMP_NAME), (self.memo, _META_NAME)):
                for f in _files(folder):
                    if pattern.fullmatch(f.name) and f.is_file(follow_symlinks=False):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(f.path)
                    else:
                        foreign.append(f.path)
        return n, foreign


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
