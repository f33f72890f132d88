"""``OpSpec``: an operator as the type checker sees it, in plain data that can be stored.

The checker needs an operator's kind, arguments, signature text, value type and a verdict on the
keyword parameters of a call. ``OpSpec.from_class`` reads those from the class (pydantic loaded);
``to_json``/``from_json`` store them in the operator manifest, so a later process checks strategies
without importing the operator's module or pydantic.

Parameters are validated as the class's pydantic model would, in strict mode, with the same error
list (types, locations, messages, inputs), by one of three routes:

- no parameters given: the errors pydantic gave for ``{}`` when the spec was made (usually none);
- a *plain* model (fields of type int, float, bool, str, a literal of strings, or lists of those,
  with the ``ge/gt/le/lt`` and length constraints, no validators): this module's small validator,
  whose messages were rendered by pydantic when the spec was made;
- anything else (a model or field validator: code): the class's own model, imported on demand.

``tests/dsl/test_opspec.py`` checks the validator against pydantic on every stdlib operator. An
operator that overrides ``result_type`` or ``removed_columns`` is answered by its class (imported
on demand), given the model pydantic made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .declarations import Arg, OpKind
from .types import Type, parse_type

__all__ = ["OpSpec"]

# pydantic's strict type errors: (type, message); tested against pydantic
_TYPE_ERROR = {
    "int": ("int_type", "Input should be a valid integer"),
    "float": ("float_type", "Input should be a valid number"),
    "bool": ("bool_type", "Input should be a valid boolean"),
    "str": ("string_type", "Input should be a valid string"),
    "list": ("list_type", "Input should be a valid list"),
}
_PY_TYPE = {"int": int, "float": float, "bool": bool, "str": str, "list": list}
_RANGE_ERROR = {"le": "less_than_equal", "lt": "less_than", "ge": "greater_than_equal", "gt": "greater_than"}
_RANGE_OK = {"le": lambda x, b: x <= b, "lt": lambda x, b: x < b, "ge": lambda x, b: x >= b, "gt": lambda x, b: x > b}
_MISSING = "Field required"
_EXTRA = "Extra inputs are not permitted"


@dataclass(frozen=True, slots=True)
class OpSpec:
    name: str
    kind: OpKind
    args: tuple[Arg, ...]
    returns: Type
    signature: str  # ``Op.signature()``: the help line of most diagnostics
    wants: dict[str, str]  # parameter -> its type as diagnostics name it, in declaration order
    custom_typing: bool  # overrides result_type/removed_columns: the class answers, given a real model
    checks: tuple | None = None  # ((name, required, check), ...) of a plain model; None: its model runs code
    no_params: tuple | None = None  # pydantic's errors for no parameters; None: ask the model
    load: Callable[[], Any] | None = field(default=None, compare=False, repr=False)  # the class

    def bind(self, load: Callable[[], Any]) -> OpSpec:
        return replace(self, load=load)

    # ---------------------------------------------------------------- what the checker asks

    def validate(self, kwargs: dict[str, Any]) -> tuple[Any, list[dict]]:
        """(params, []) or (None, errors as pydantic's ``errors(include_url=False)`` gives them)."""
        if not self.custom_typing and not kwargs and self.no_params is not None:
            return ({} if not self.no_params else None), [dict(e) for e in self.no_params]
        if not self.custom_typing and self.checks is not None:
            errors = _validate(self.checks, kwargs)
            return (None if errors else kwargs), errors
        from pydantic import ValidationError

        try:
            return self.load().Params.model_validate(kwargs, strict=True), []
        except ValidationError as e:
            return None, e.errors(include_url=False)

    def result_type(self, arg_types: list[Type], params: Any) -> Type:
        return self.load()().result_type(arg_types, params) if self.custom_typing else self.returns

    def removed_columns(self, columns: list[str], params: Any) -> list[str]:
        return self.load()().removed_columns(columns, params) if self.custom_typing else []

    # ---------------------------------------------------------------- made from the class, stored

    @classmethod
    def from_class(cls, op) -> OpSpec:
        """The spec of operator class ``op`` (an ``Op`` subclass; pydantic is loaded by then)."""
        model = op.Params
        wants = {n: getattr(f.annotation, "__name__", str(f.annotation)) for n, f in model.model_fields.items()}
        return cls(
            name=op.name,
            kind=OpKind(op.kind),
            args=tuple(op.args),
            returns=op.returns,
            signature=op.signature(),
            wants=wants,
            custom_typing=op.custom_typing(),
            checks=_plain_checks(model),
            no_params=_errors_without_params(model),
            load=lambda: op,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": str(self.kind),
            "args": [[a.name, str(a.type), a.column, a.variadic, a.doc] for a in self.args],
            "returns": str(self.returns),
            "signature": self.signature,
            "wants": self.wants,
            "custom_typing": self.custom_typing,
            "checks": self.checks,
            "no_params": self.no_params,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> OpSpec:
        return cls(
            name=d["name"],
            kind=OpKind(d["kind"]),
            args=tuple(Arg(n, parse_type(t), column, variadic, doc) for n, t, column, variadic, doc in d["args"]),
            returns=parse_type(d["returns"]),
            signature=d["signature"],
            wants=d["wants"],
            custom_typing=d["custom_typing"],
            checks=_tuples(d["checks"]),
            no_params=None if d["no_params"] is None else tuple({**e, "loc": tuple(e["loc"])} for e in d["no_params"]),
        )


def _tuples(x):
    """JSON lists back to the tuples they were (checks are nested tuples and dicts)."""
    if isinstance(x, list):
        return tuple(_tuples(i) for i in x)
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    return x


# ---------------------------------------------------------------- validating a plain model


def _validate(checks: tuple, kwargs: dict[str, Any]) -> list[dict]:
    # pydantic's order: the fields in declaration order, then the unknown keys in the order given
    errors: list[dict] = []
    for name, required, check in checks:
        if name in kwargs:
            _check(check, kwargs[name], (name,), errors)
        elif required:
            errors.append({"type": "missing", "loc": (name,), "msg": _MISSING, "input": kwargs})
    known = {c[0] for c in checks}
    errors += [{"type": "extra_forbidden", "loc": (k,), "msg": _EXTRA, "input": v} for k, v in kwargs.items() if k not in known]
    return errors


def _check(c: dict, v: Any, loc: tuple, errors: list[dict]) -> None:
    t = c["t"]
    if t == "literal":
        if type(v) is not str or v not in c["expected"]:
            errors.append({"type": "literal_error", "loc": loc, "msg": c["msg"], "input": v})
        return
    x = v
    if t == "float" and type(v) is int:
        try:
            x = float(v)  # pydantic compares the float it makes, and rejects ints no float holds
        except OverflowError:
            x = None
    if x is None or type(x) is not _PY_TYPE[t]:
        kind, msg = _TYPE_ERROR[t]
        errors.append({"type": kind, "loc": loc, "msg": msg, "input": v})
        return
    if t in ("int", "float"):
        for op, bound, msg in c["ranges"]:
            if not _RANGE_OK[op](x, bound):
                errors.append({"type": _RANGE_ERROR[op], "loc": loc, "msg": msg, "input": v})
                return
    elif t == "str":
        if "min_length" in c and len(v) < c["min_length"]:
            errors.append({"type": "string_too_short", "loc": loc, "msg": c["short_msg"], "input": v})
        elif "max_length" in c and len(v) > c["max_length"]:
            errors.append({"type": "string_too_long", "loc": loc, "msg": c["long_msg"], "input": v})
    elif t == "list":
        # too long is judged on the input, before the items; too short only when every item is valid
        if "max_length" in c and len(v) > c["max_length"]:
            errors.append({"type": "too_long", "loc": loc, "msg": c["long_msg"].replace(_N, str(len(v))), "input": v})
            return
        n = len(errors)
        for i, item in enumerate(v):
            _check(c["items"], item, (*loc, i), errors)
        if len(errors) == n and "min_length" in c and len(v) < c["min_length"]:
            errors.append({"type": "too_short", "loc": loc, "msg": c["short_msg"].replace(_N, str(len(v))), "input": v})


# ---------------------------------------------------------------- reading pydantic's schema

_N = "987654321"  # stands for the actual length in a rendered message; replaced when reporting


class _NotPlain(Exception):
    pass


def _plain_checks(model) -> tuple | None:
    """The model's fields as ((name, required, check), ...), or None unless pydantic's validation
    of it is plain (see the module docstring). Read from the core schema pydantic runs, so a
    validator anywhere (a ``function-*`` schema), an alias or an unusual setting shows."""
    s = model.__pydantic_core_schema__
    try:
        _only(s, "type", "cls", "config", "custom_init", "root_model", "schema", "metadata", "ref")
        if s["type"] != "model" or s.get("custom_init") or s.get("root_model"):
            raise _NotPlain
        config = s.get("config", {})
        _only(config, "title", "extra_fields_behavior")
        if config.get("extra_fields_behavior") != "forbid":
            raise _NotPlain
        fields = s["schema"]
        _only(fields, "type", "fields", "model_name", "computed_fields")
        if fields["type"] != "model-fields":
            raise _NotPlain
        out = []
        for name, f in fields["fields"].items():
            _only(f, "type", "schema", "metadata")
            inner = f["schema"]
            required = inner["type"] != "default"
            if not required:
                _only(inner, "type", "schema", "default", "metadata")
                inner = inner["schema"]
            out.append((name, required, _check_of(inner)))
        return tuple(out)
    except (_NotPlain, KeyError):
        return None


def _only(d: dict, *keys: str) -> None:
    if set(d) - set(keys):
        raise _NotPlain


def _check_of(s: dict) -> dict:
    from pydantic_core import SchemaValidator, ValidationError

    t = s["type"]
    if s.get("strict", True) is not True:  # a field that asks for lax mode: let pydantic decide
        raise _NotPlain
    if t in ("int", "float"):
        _only(s, "type", "le", "lt", "ge", "gt", "strict", "metadata")
        ok = (int,) if t == "int" else (int, float)
        bounds = [(op, s[op]) for op in ("le", "lt", "ge", "gt") if op in s]  # pydantic's order
        if any(type(b) not in ok for _, b in bounds):
            raise _NotPlain
        return {"t": t, "ranges": tuple((op, b, _message(_RANGE_ERROR[op], {op: b})) for op, b in bounds)}
    if t == "bool":
        _only(s, "type", "strict", "metadata")
        return {"t": t}
    if t in ("str", "list"):
        _only(s, "type", "min_length", "max_length", "strict", "metadata", *(("items_schema",) if t == "list" else ()))
        c: dict[str, Any] = {"t": t}
        kind = "string_too" if t == "str" else "too"
        extra = {} if t == "str" else {"field_type": "List", "actual_length": int(_N)}
        if "min_length" in s:
            c["min_length"] = s["min_length"]
            c["short_msg"] = _message(f"{kind}_short", {"min_length": s["min_length"], **extra})
        if "max_length" in s:
            c["max_length"] = s["max_length"]
            c["long_msg"] = _message(f"{kind}_long", {"max_length": s["max_length"], **extra})
        if t == "list":
            c["items"] = _check_of(s["items_schema"])
        return c
    if t == "literal":
        _only(s, "type", "expected", "metadata")
        if not all(type(e) is str for e in s["expected"]):
            raise _NotPlain
        try:
            SchemaValidator(s).validate_python(object(), strict=True)
        except ValidationError as e:
            return {"t": t, "expected": tuple(s["expected"]), "msg": e.errors()[0]["msg"]}
    raise _NotPlain


def _message(kind: str, ctx: dict) -> str:
    """pydantic's message for an error of this type and context, rendered by pydantic itself."""
    from pydantic_core import ValidationError

    return ValidationError.from_exception_data("Params", [{"type": kind, "loc": ("x",), "input": 0, "ctx": ctx}]).errors()[0]["msg"]


def _errors_without_params(model) -> tuple | None:
    """pydantic's errors for ``{}``, if they survive being stored as JSON unchanged; else None."""
    from pydantic import ValidationError

    try:
        model.model_validate({}, strict=True)
        return ()
    except ValidationError as e:
        errors = tuple({k: err[k] for k in ("type", "loc", "msg", "input")} for err in e.errors(include_url=False))
    try:
        stored = json.loads(json.dumps(errors))
    except (TypeError, ValueError):
        return None
    same = all(repr({**s, "loc": tuple(s["loc"])}) == repr(e) for s, e in zip(stored, errors, strict=True))
    return errors if same else None
