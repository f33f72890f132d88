"""Every operator of the vectorised catalog declares itself completely."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from autodp_dsl.ops import Cost, OpKind, Params, registry
from stdlib_ops import cleaning, dedup, selection, signals

OPS = [op for mod in (signals, cleaning, dedup, selection) for op in mod.OPS]


def test_all_registered():
    reg = registry()
    for op in OPS:
        assert reg.get(op.name) is op


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_declaration(op):
    doc = op.doc()
    summary = op.summary()
    assert summary and summary.endswith(".") and "\n" not in summary, summary
    assert "Example: ``" in doc, f"{op.name}: no example"
    assert isinstance(op.version, int) and op.version >= 1
    assert issubclass(op.Params, Params) and issubclass(op.Params, BaseModel)
    assert op.cost == Cost.VECTORISED
    op.Params.model_json_schema()  # every parameter model renders a schema
    for name, field in op.Params.model_fields.items():
        assert field.description, f"{op.name}.{name} has no description"
        assert field.default is not None, f"{op.name}.{name}: None is not a DSL literal"
    if op.kind == OpKind.MAP:
        assert all(a.column for a in op.args)
        assert op.commutes == (op.name != "clean.boilerplate_lines")
    if op.kind == OpKind.GLOBAL:
        assert not op.commutes
    op.signature()  # renders


def test_a_missing_operator_family_is_an_import_error(monkeypatch):
    """The catalog never skips a family silently: a missing module fails registration, named."""
    import stdlib_ops
    from autodp_dsl.ops import Registry

    monkeypatch.setattr(stdlib_ops, "_MODULES", (*stdlib_ops._MODULES, "no_such_family"))
    with pytest.raises(ModuleNotFoundError, match="stdlib_ops.no_such_family"):
        stdlib_ops.register(Registry())
