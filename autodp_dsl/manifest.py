"""The operator manifest: the default registry's declarations, cached so checking imports nothing.

Loading the registry means importing every operator module and building its pydantic models:
most of ``autodp lint``'s start-up. The first process that loads it writes what the type checker
needs of each operator (an ``OpSpec``) and where its class lives to
``<cache>/ops/<sys.path hash>.json`` (``<cache>``: ``$AUTODP_CACHE_DIR``, else
``$XDG_CACHE_HOME/autodp`` or ``~/.cache/autodp``); later processes build the registry from it, and
an operator's module is imported only when its class is asked for (``Registry.get``).

The manifest is used only while it is current. It records the Python version, ``sys.path``, the
modification time of every ``sys.path`` folder (installing or removing a distribution, and so an
``autodp.ops`` entry point, changes its folder) and the size and modification time of the source
of every module loaded from the packages that declare operators (and of the autodp modules that
shape a spec). Any difference and the registry is loaded from the entry points and the manifest
rewritten (atomically: concurrent processes never read a torn file); the folder keeps the 16 most
recently written. ``AUTODP_NO_OPS_CACHE=1`` turns it off.

The manifest is a file in a cache folder, so it is not trusted to say what code to run: before an
operator's class is imported, the module the manifest names must belong to the package of an
installed ``autodp.ops`` entry point (or the built-in ``stdlib_ops``), and an entry point it names
must be one of those installed; what it imports must be an ``Op`` class. A manifest naming anything
else (``os:system``, a module planted on ``sys.path``) is ignored: the operator is taken from the
installed entry points instead, and the manifest rewritten.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import zlib
from pathlib import Path

from .opregistry import Registry
from .opspec import OpSpec
from .paths import cache_root
from .plugins import BUILTIN, BUILTIN_ENTRY_POINT, GROUP, entry_point_module, load_entry_points, load_function

__all__ = ["load", "save", "manifest_path"]

FORMAT = 1
# autodp modules whose code decides what a spec says: a change to them makes manifests stale
_SHAPERS = (
    "autodp_dsl.catalog", "autodp_dsl.declarations", "autodp_dsl.manifest", "autodp_dsl.opbase", "autodp_dsl.opregistry",
    "autodp_dsl.ops", "autodp_dsl.opspec", "autodp_dsl.plugins", "autodp_dsl.types",
)


def _search_path() -> list[str]:
    return [os.fsdecode(os.path.abspath(p or ".")) for p in sys.path]


def manifest_path() -> Path:
    """Where the manifest of this interpreter and ``sys.path`` lives."""
    key = json.dumps([FORMAT, sys.version, _search_path()])
    return cache_root() / "ops" / f"{zlib.crc32(key.encode()):08x}.json"


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _file_stamp(path: str) -> list | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def load() -> Registry | None:
    """The default registry from a current manifest, or None (absent, stale, unreadable)."""
    if os.environ.get("AUTODP_NO_OPS_CACHE"):
        return None
    try:
        data = json.loads(manifest_path().read_bytes())
    except (OSError, ValueError):
        return None
    try:
        if data["format"] != FORMAT or data["python"] != sys.version or data["path"] != _search_path():
            return None
        if any(_mtime(p) != t for p, t in data["dirs"]) or any(_file_stamp(p) != s for p, s in data["files"]):
            return None
        reg = Registry()
        for entry in data["ops"]:
            reg.describe(OpSpec.from_json(entry["spec"]), _loader(entry["class"], entry["entry_point"], entry["spec"]["name"]))
        return reg
    except (KeyError, TypeError, ValueError):  # a manifest of another shape: rebuild it
        return None


def _loader(where: str | None, entry_point: str, name: str):
    """How to import operator ``name``: its class by module and name when that finds the very
    class the entry point registered (checked when the manifest was written), else by running the
    entry point's function into a scratch registry -- each only when the manifest names installed
    operator code (see the module doc); otherwise from the installed entry points."""

    def load():
        op = None
        # the built-in operators need no look-up of the installed entry points (20+ ms)
        top = entry_point_module(where).split(".")[0] if where else None
        if where and (top == BUILTIN or top in _installed()[1]):
            op = load_function(where)
        elif not where and (entry_point == BUILTIN_ENTRY_POINT or entry_point in _installed()[0]):
            scratch = Registry()
            load_function(entry_point)(scratch)
            op = scratch.get(name)
        if _is_op(op):
            return op
        return _from_entry_points(name)

    return load


@functools.cache
def _installed() -> tuple[frozenset[str], frozenset[str]]:
    """The values of the installed ``autodp.ops`` entry points (plus the built-in stdlib's) and the
    top-level packages they are in: the only code a manifest may name."""
    from importlib.metadata import entry_points

    values = {ep.value.split("[")[0].strip() for ep in entry_points(group=GROUP)} | {BUILTIN_ENTRY_POINT}
    return frozenset(values), frozenset(entry_point_module(v).split(".")[0] for v in values)


def _is_op(obj) -> bool:
    from .opbase import Op  # pydantic: only once a manifest's operator is imported

    return isinstance(obj, type) and issubclass(obj, Op)


def _from_entry_points(name: str):
    """Operator ``name`` from the installed entry points, for a manifest that names other code (it
    is rewritten from them)."""
    reg, sources = load_entry_points()
    save(reg, sources)
    op = reg.get(name)
    if op is None:
        raise RuntimeError(f"the operator manifest names {name!r}, which no installed autodp.ops entry point provides; remove the ops/ folder of the cache")
    return op


def save(reg: Registry, sources: dict[str, str]) -> None:
    """Write the manifest of a registry loaded from the entry points (``sources``: operator -> the
    entry point that registered it). Best effort: the manifest is a cache, and a failure to write
    it (an unwritable folder, an operator it cannot describe) only means the next process loads the
    entry points again."""
    if os.environ.get("AUTODP_NO_OPS_CACHE"):
        return
    try:
        path = manifest_path()
        data = _describe(reg, sources)
        from .atomic import write_text_atomic  # here: tempfile is not needed to read a manifest

        for folder in reversed([path.parent, *path.parent.parents]):  # private, like the rest of the cache
            if not folder.exists():
                folder.mkdir(mode=0o700)

        write_text_atomic(path, json.dumps(data, ensure_ascii=False))
        _prune(path.parent)
    except Exception:  # best effort: see the docstring
        pass


def _describe(reg: Registry, sources: dict[str, str]) -> dict:
    ops = []
    packages = {"autodp_dsl"}
    for op in reg:
        where = f"{op.__module__}:{op.__qualname__}"
        try:
            found = load_function(where) is op
        except (ImportError, AttributeError):
            found = False
        ops.append({"spec": reg.spec(op.name).to_json(), "class": where if found else None, "entry_point": sources[op.name]})
        packages |= {m.split(":")[0].split(".")[0] for m in (op.__module__, op.Params.__module__, sources[op.name])}
    modules = [
        m for name, m in list(sys.modules.items())
        if (top := name.split(".")[0]) in packages and (top != "autodp_dsl" or name in _SHAPERS)
    ]
    files = sorted({f for m in modules if (f := getattr(m, "__file__", None))})
    return {
        "format": FORMAT,
        "python": sys.version,
        "path": _search_path(),
        "dirs": [[p, _mtime(p)] for p in _search_path()],
        "files": [[f, _file_stamp(f)] for f in files],
        "ops": ops,
    }


def _prune(folder: Path, keep: int = 16) -> None:
    """Each interpreter and ``sys.path`` (the working folder is on it for ``python -m``) has its
    own manifest: keep the most recently written few."""
    old = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)[keep:]
    for p in old:
        p.unlink(missing_ok=True)
