"""The shape of the house (docs/architecture.md), checked statically over every import.

An AST walk over every module of the product packages, imports inside functions and under
``if TYPE_CHECKING:`` included (a deferred import is still a dependency: it only hides a cycle
until the function runs). It fails on

- an import that points up the layering: ``autodp_dsl`` <- ``stdlib_ops`` <- ``autodp_search``;
  ``autodp_eval`` imports none of the others; ``autodp_backends`` (the model-backend leaf) imports
  none of them and any of them may import it;
- an import cycle between two modules (a package's ``__init__`` counts as a module);
- a private name (``_x``) imported from another module, or a private module (``_x.py``) imported
  from outside its top-level package (the privacy convention of docs/architecture.md), or a
  private name read through another module (``ir._x``; two known cases are listed, none may be added).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("autodp_dsl", "stdlib_ops", "autodp_search", "autodp_eval", "autodp_backends")

# who may import whom (besides itself); the third-party and standard library are not constrained here
MAY_IMPORT = {
    "autodp_backends": set(),
    "autodp_dsl": {"autodp_backends"},
    "autodp_eval": {"autodp_backends"},
    "stdlib_ops": {"autodp_dsl", "autodp_backends"},
    "autodp_search": {"autodp_dsl", "stdlib_ops", "autodp_eval", "autodp_backends"},
}


def modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``), for every .py of the packages."""
    out = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            init = parts[-1] == "__init__"
            out[".".join(parts[:-1] if init else parts)] = (f, init)
    return out


def imports(name: str, init: bool, tree: ast.AST, known) -> list[tuple[str, int, list[str]]]:
    """(imported module, line, names taken from it) for every import statement of one module.

    ``from pkg import sub`` imports the module ``pkg.sub`` when there is one, else the name ``sub``
    of ``pkg``. Imports of other libraries keep their dotted name and are filtered by the caller."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if init else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] + ([node.module] if node.module else [])
                src = ".".join(base)
            else:
                src = node.module or ""
            for a in node.names:
                sub = f"{src}.{a.name}"
                out.append((sub, node.lineno, []) if sub in known else (src, node.lineno, [a.name]))
    return out


def module_aliases(name: str, init: bool, tree: ast.AST, known) -> dict[str, str]:
    """Local name -> module of ours, for ``from pkg import mod`` and ``import pkg.mod as m``."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update({a.asname: a.name for a in node.names if a.asname and a.name in known})
        elif isinstance(node, ast.ImportFrom):
            for sub, _, names in imports(name, init, ast.Module(body=[node], type_ignores=[]), known):
                if not names:
                    alias = next(a for a in node.names if sub.endswith("." + a.name))
                    out[alias.asname or alias.name] = sub
    return out


def private_attributes(root: Path = ROOT) -> set[str]:
    """``module._name`` read through a module imported from another module of ours."""
    found = set()
    for m, (f, init) in modules(root).items():
        tree = ast.parse(f.read_text(encoding="utf-8"), str(f))
        aliases = module_aliases(m, init, tree, modules(root))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.add(f"{m}: {aliases[node.value.id]}.{node.attr}")
    return found


# Reads of another module's private name: none left; nothing may be added to this list.
KNOWN_PRIVATE_ATTRIBUTES: set[str] = set()


def graph(root: Path = ROOT) -> tuple[dict[str, tuple[Path, bool]], dict[str, dict[str, int]], list[str]]:
    """(modules, module -> {imported module of ours: first line}, private-name imports)."""
    mods = modules(root)
    edges: dict[str, dict[str, int]] = {m: {} for m in mods}
    private = []
    for m, (f, init) in mods.items():
        for target, line, names in imports(m, init, ast.parse(f.read_text(encoding="utf-8"), str(f)), mods):
            while target and target not in mods:  # `import autodp_dsl.engine.keys` -> that module
                target = target.rpartition(".")[0]
            if not target or target == m:
                continue
            edges[m].setdefault(target, line)
            private += [f"{f.relative_to(root)}:{line} imports {n} from {target}" for n in names if n.startswith("_") and not n.startswith("__")]
            hidden = [p for p in target.split(".")[1:] if p.startswith("_") and not p.startswith("__")]
            if hidden and target.split(".")[0] != m.split(".")[0]:
                private.append(f"{f.relative_to(root)}:{line} imports the private module {target}")
    return mods, edges, private


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(edges[w])))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def upward(mods, edges, root: Path = ROOT) -> list[str]:
    bad = []
    for m, targets in edges.items():
        src = m.split(".")[0]
        for t, line in targets.items():
            dst = t.split(".")[0]
            if dst != src and dst not in MAY_IMPORT[src]:
                bad.append(f"{mods[m][0].relative_to(root)}:{line}: {src} may not import {dst} ({m} -> {t})")
    return bad


@pytest.fixture(scope="module")
def house():
    return graph()


def test_the_walk_sees_every_package_and_the_imports_inside_functions(house):
    mods, edges, _ = house
    assert {m.split(".")[0] for m in mods} >= {"autodp_dsl", "stdlib_ops", "autodp_search", "autodp_eval"}
    # a function-level import (the streaming executor is imported when a run streams)
    assert "autodp_dsl.engine.streaming" in edges["autodp_dsl.engine.executor"]
    # a relative `from . import x` is the module x, not the package
    assert "autodp_dsl.ir" in edges["autodp_dsl.lower"]


def test_no_import_points_up_the_layering(house):
    mods, edges, _ = house
    assert upward(mods, edges) == []


def test_no_import_cycle(house):
    _, edges, _ = house
    found = cycles(edges)
    detail = [" <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in edges[a] if b in c) for c in found]
    assert detail == []


# Private imports across modules: none left; nothing may be added to this list.
KNOWN_PRIVATE_IMPORTS: set[str] = set()


def test_no_private_name_is_imported_from_another_module(house):
    assert set(house[2]) <= KNOWN_PRIVATE_IMPORTS


def test_no_private_name_is_read_through_another_module():
    assert private_attributes() <= KNOWN_PRIVATE_ATTRIBUTES


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_the_checks_catch_a_hidden_cycle_an_upward_import_and_a_private_import(tmp_path):
    """The detector itself: a cycle hidden behind a function-level import, an upward import inside
    a function, and a private name, in a made-up tree."""
    _write(tmp_path, {
        "autodp_dsl/__init__.py": "",
        "autodp_dsl/a.py": "from .b import thing\n",
        "autodp_dsl/b.py": "def thing():\n    from . import a\n    from .c import _secret\n",
        "autodp_dsl/c.py": "def f():\n    import stdlib_ops.x\n",
        "autodp_dsl/d.py": "from . import a\n\n\ndef g():\n    return a._hidden\n",
        "stdlib_ops/__init__.py": "",
        "stdlib_ops/x.py": "import json\n",
        "autodp_eval/__init__.py": "def g():\n    from autodp_dsl import a\n",
        "autodp_eval/_inner.py": "",
        "autodp_search/__init__.py": "from autodp_eval import _inner\n",
    })
    mods, edges, private = graph(tmp_path)
    assert cycles(edges) == [["autodp_dsl.a", "autodp_dsl.b"]]
    assert private == ["autodp_dsl/b.py:3 imports _secret from autodp_dsl.c", "autodp_search/__init__.py:1 imports the private module autodp_eval._inner"]
    assert private_attributes(tmp_path) == {"autodp_dsl.d: autodp_dsl.a._hidden"}
    assert upward(mods, edges, tmp_path) == [
        "autodp_dsl/c.py:2: autodp_dsl may not import stdlib_ops (autodp_dsl.c -> stdlib_ops.x)",
        "autodp_eval/__init__.py:2: autodp_eval may not import autodp_dsl (autodp_eval -> autodp_dsl.a)",
    ]
