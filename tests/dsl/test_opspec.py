"""``OpSpec.validate`` gives the errors pydantic gives, exactly, whichever route it takes.

Specs are stored as JSON in the operator manifest, so every spec here is made from its class and
read back from JSON first, as ``autodp lint`` sees it. Errors are compared by ``repr`` of (type,
loc, msg, input), so ``1`` and ``True`` or ``1`` and ``1.0`` differ.
"""

from __future__ import annotations

import json
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, ValidationError, model_validator

from autodp_dsl import compile_text
from autodp_dsl.catalog import OpKind, Registry, load_entry_points
from autodp_dsl.ops import Arg, Op, Params
from autodp_dsl.opspec import OpSpec
from autodp_dsl.types import INT, STR

STDLIB, _ = load_entry_points()


class Plain(Params):
    """Every kind of field the small validator covers."""

    n: int = Field(3, ge=1, le=10)
    x: float = Field(0.5, gt=0.0, lt=1.0)
    big: int = Field(0, ge=0, le=10**12)
    wide: float = Field(1.0, ge=-1e20, le=1e20)
    flag: bool = True
    s: str = Field("ab", min_length=2, max_length=4)
    mode: Literal["a", "b'c", 'd"e'] = "a"
    kinds: list[Literal["p", "q"]] = Field(["p"], min_length=2, max_length=3)
    one: list[str] = Field([], max_length=1)
    nested: list[list[int]] = []
    need: int


class Checked(Params):
    lo: int = Field(1, ge=0)
    hi: int = Field(5, ge=0)

    @model_validator(mode="after")
    def _order(self):
        if self.lo > self.hi:
            raise ValueError(f"contradictory bounds: lo ({self.lo}) > hi ({self.hi})")
        return self


def _op(model, op_name="t.op"):
    return type("T", (Op,), {"name": op_name, "kind": OpKind.SIGNAL, "args": (Arg("text", STR),), "returns": INT, "Params": model})


MODELS = [Plain, Checked] + sorted({op.Params for op in STDLIB}, key=lambda m: m.__name__)


def _stored(op) -> OpSpec:
    """The spec as a later process reads it from the manifest."""
    return OpSpec.from_json(json.loads(json.dumps(OpSpec.from_class(op).to_json()))).bind(lambda: op)


def _pydantic(model, kwargs) -> list:
    try:
        model.model_validate(kwargs, strict=True)
        return []
    except ValidationError as e:
        return e.errors(include_url=False)


def _key(errors) -> list[str]:
    return [repr((e["type"], tuple(e["loc"]), e["msg"], e["input"])) for e in errors]


def _bounds() -> list:
    out = []
    for model in MODELS:
        for f in model.model_fields.values():
            for m in f.metadata:
                for attr in ("ge", "gt", "le", "lt", "min_length", "max_length"):
                    b = getattr(m, attr, None)
                    if b is not None:
                        out += [b, b - 1, b + 1] + ([b - 0.5, b + 0.5, float(b)] if attr in ("ge", "gt", "le", "lt") else [])
    return out


_scalar = st.one_of(
    st.sampled_from(_bounds()), st.integers(-3, 12), st.integers(), st.booleans(),
    st.floats(allow_nan=False), st.just(10**400), st.just(float("inf")),
    st.sampled_from(["", "a", "ab", "abcde", "b'c", "p", "q", "NFC", "email", "llm", "auto"]), st.text(max_size=6),
)
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4), max_leaves=8)


@st.composite
def _kwargs(draw, model):
    names = list(model.model_fields) + ["nope", "n_"]
    return draw(st.dictionaries(st.sampled_from(names), _value, max_size=4))


def _agrees(model, kwargs):
    params, errors = _stored(_op(model)).validate(kwargs)
    assert _key(errors) == _key(_pydantic(model, kwargs)), kwargs
    assert (params is None) == bool(errors)


@settings(max_examples=1000)
@given(data=st.data())
def test_small_validator_matches_pydantic(data):
    _agrees(Plain, data.draw(_kwargs(Plain)))


@pytest.mark.parametrize("model", MODELS[1:], ids=lambda m: m.__name__)
@settings(max_examples=60)
@given(data=st.data())
def test_every_stdlib_model_matches_pydantic(model, data):
    _agrees(model, data.draw(_kwargs(model)))


def test_plain_models_use_the_small_validator():
    assert _stored(_op(Plain)).checks is not None
    assert _stored(_op(Checked)).checks is None  # a validator is code: the class's model decides
    for name in ("words", "chars", "clean.whitespace", "clean.html", "dedup.exact", "word_repetition_ratio"):
        assert STDLIB.spec(name).checks is not None, name


def test_stored_specs_say_what_the_classes_say():
    for op in STDLIB:
        spec = _stored(op)
        assert (spec.name, spec.kind, spec.args, spec.returns, spec.signature) == (op.name, op.kind, op.args, op.returns, op.signature())
        assert list(spec.wants) == list(op.Params.model_fields)


def test_ops_that_override_typing_are_asked():
    class Twice(Op):
        name = "t.twice"
        kind = OpKind.SIGNAL
        args = (Arg("value", INT),)

        def result_type(self, arg_types, params):
            return arg_types[0]

    reg = Registry()
    reg.add(Twice)
    assert reg.spec("t.twice").custom_typing
    r = compile_text("dp: 1\nname: t\ncolumns: {n: int}\nsteps:\n  - filter: t.twice(n) > 1\n", reg=reg)
    assert r.ok, r.diagnostics
