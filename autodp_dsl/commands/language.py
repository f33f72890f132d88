"""The language subcommands: ``lint``, ``compile``, ``fmt``, ``schema``, ``ops``."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..compiler import compile_file, json_schema
from ..diagnostics import Diagnostic, has_errors, render_all, to_json
from ..types import Type

__all__ = ["register_lint", "register_compile", "register_fmt", "register_schema", "register_ops"]


def columns_options(p) -> None:
    p.add_argument("--data", metavar="DATA", help="type-check against the columns of this data file (jsonl, json, parquet)")
    p.add_argument("--columns", metavar="NAME:TYPE,...", help="the input columns, e.g. instruction:str,output:str,score:float")


def columns_from_args(args) -> tuple[dict[str, Type] | None, str | None]:
    """The input schema asked for on the command line, or (None, error message)."""
    from ..types import parse_type

    if getattr(args, "columns", None):
        out = {}
        for part in args.columns.split(","):
            name, _, t = part.partition(":")
            try:
                out[name.strip()] = parse_type(t or "str")
            except ValueError as e:
                return None, f"--columns: {e}"
        return out, None
    if getattr(args, "data", None):
        from ..io import read_data

        try:
            return read_data(args.data).columns, None  # "__*" input columns pass through, unnamed
        except (OSError, ValueError) as e:
            return None, f"cannot read the columns of {args.data}: {e}"
    return None, None


def with_columns(run: Callable[[Any, dict[str, Type] | None], int]) -> Callable[[Any], int]:
    """The command ``run(args, columns)`` given the input schema of --data / --columns; when they
    cannot be used, one line and exit 2 instead. ``lint``, ``compile`` and ``lsp`` share it."""

    @functools.wraps(run)
    def command(args) -> int:
        columns, err = columns_from_args(args)
        if err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return run(args, columns)

    return command


def _print_diags(path: str, diags: list[Diagnostic], source: str, fmt: str) -> None:
    if fmt == "text" and diags:
        print(render_all(diags, source), file=sys.stderr)


# ---------------------------------------------------------------- lint


def register_lint(sub) -> None:
    p = sub.add_parser("lint", help="check .dp files; exit 0 when clean, 1 on errors")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("text", "json"), default="text", help="json: machine-readable diagnostics for agents")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--fix", action="store_true",
                   help="first apply the machine-applicable fixes in place (comments and layout kept), then report what is left")
    columns_options(p)
    p.set_defaults(func=run_lint)


def _fix_file(f: str, columns) -> bool:
    """Apply the fixes to file ``f`` (atomically); False if it could not be written."""
    from ..atomic import write_text_atomic
    from ..fixes import fix_text

    try:
        text = Path(f).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True  # lint reports it
    fixed, n = fix_text(text, f, columns)
    if fixed != text:
        try:
            write_text_atomic(Path(f), fixed)
        except (OSError, ValueError) as e:
            print(f"error: cannot write {f}: {e}", file=sys.stderr)
            return False
        print(f"{f}: applied {n} fix{'es' * (n != 1)}", file=sys.stderr)
    return True


@with_columns
def run_lint(args, columns) -> int:
    failed = False
    report = []
    for f in args.files:
        if args.fix and not _fix_file(f, columns):
            failed = True
            continue
        r = compile_file(f, columns, level="none")
        bad = has_errors(r.diagnostics) or (args.strict and bool(r.diagnostics))
        failed |= bad
        if args.format == "json":
            report.append({"file": f, "ok": not bad, "diagnostics": [d.to_dict() for d in r.diagnostics]})
        else:
            _print_diags(f, r.diagnostics, r.source, "text")
            if not r.diagnostics:
                print(f"{f}: ok")
    if args.format == "json":
        print(json.dumps(report if len(report) > 1 else report[0], indent=2, ensure_ascii=False))
    return 1 if failed else 0


# ---------------------------------------------------------------- compile


def register_compile(sub) -> None:
    p = sub.add_parser("compile", help="print the typed IR and the Polars plan of a .dp file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--emit", choices=("ir", "plan", "both"), default="both")
    p.add_argument("--level", choices=("none", "canonical", "full"), default="full", help="optimizer rules to run")
    p.add_argument("--format", choices=("text", "json"), default="text", help="format of diagnostics")
    columns_options(p)
    p.set_defaults(func=run_compile)


@with_columns
def run_compile(args, columns) -> int:
    r = compile_file(args.file, columns, level=args.level)
    if not r.ok:
        print(to_json(r.diagnostics)) if args.format == "json" else _print_diags(args.file, r.diagnostics, r.source, "text")
        return 1
    _print_diags(args.file, r.diagnostics, r.source, args.format)
    if args.emit in ("ir", "both"):
        if args.emit == "both":
            print("== IR ==")
        print(json.dumps(r.strategy.to_json(), indent=2, ensure_ascii=False))
    if args.emit in ("plan", "both"):
        import polars as pl

        from ..lower import lower_strategy

        if args.data:
            from ..io import read_data

            lf = read_data(args.data).frame.lazy()
        else:
            schema = dict(r.strategy.columns) or (columns or {"instruction": Type("str"), "input": Type("str"), "output": Type("str")})
            lf = pl.DataFrame(schema={n: t.to_polars() for n, t in schema.items()}).lazy()
        if args.emit == "both":
            print("== Polars plan ==")
        print(lower_strategy(r.strategy, lf).explain())
    return 0


# ---------------------------------------------------------------- fmt


def register_fmt(sub) -> None:
    p = sub.add_parser("fmt", help="rewrite .dp files in the one canonical layout (refused, exit 2, where it would lose something)")
    p.add_argument("files", nargs="+", metavar="FILE")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", "-w", action="store_true", help="rewrite the files in place")
    g.add_argument("--check", action="store_true", help="exit 1 if a file is not canonical, 2 if one cannot be formatted")
    p.add_argument("--force", action="store_true", help="with --write: also rewrite a file that has other hard links (they keep the old text)")
    p.set_defaults(func=run_fmt)


def run_fmt(args) -> int:
    """Exit 0: every file canonical (or formatted); 1: ``--check`` found a file to format; 2: a file
    cannot be read, parsed or formatted without loss. 2 wins over 1, so a check never passes a
    file it could not judge."""
    from ..compiler import read_source
    from ..fmt import format_source

    status = 0
    for f in args.files:
        src, diags = read_source(f)
        out = None
        if src is not None:
            out, diags = format_source(src)
        if out is None:
            for d in diags:
                d.file = f
            print(render_all(diags, src), file=sys.stderr)
            status = 2
            continue
        if args.check:
            if out != src:
                print(f"{f}: not formatted")
                status = max(status, 1)
        elif args.write:
            if out != src:
                from ..atomic import write_text_atomic

                try:  # keeps the mode, writes through a symlink, refuses to split hard links
                    write_text_atomic(Path(f), out, force=args.force)
                except (OSError, ValueError) as e:
                    print(f"error: cannot write {f}: {e}", file=sys.stderr)
                    status = max(status, 1)
                    continue
                print(f"{f}: formatted")
        else:
            sys.stdout.write(out)
    return status


# ---------------------------------------------------------------- schema


def register_schema(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of a .dp document")
    p.set_defaults(func=lambda args: print(json.dumps(json_schema(), indent=2)) or 0)


# ---------------------------------------------------------------- ops


def register_ops(sub) -> None:
    p = sub.add_parser("ops", help="list the operator catalog, or show one operator's documentation")
    p.add_argument("name", nargs="?", help="an operator name, e.g. clean.html")
    p.add_argument("--family", choices=("cleaning", "generation", "optimization", "selection"))
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run_ops)


def op_info(op) -> dict:
    return {
        "name": op.name,
        "kind": str(op.kind),
        "family": str(op.family),
        "cost": str(op.cost),
        "version": op.version,
        "deterministic": op.deterministic,
        "signature": op.signature(),
        "params": op.Params.model_json_schema().get("properties", {}),
        "doc": op.doc(),
    }


def op_text(op) -> str:
    """An operator's help as `autodp ops NAME` prints it (the language server's hover shows it too)."""
    head = (f"{op.signature()}\n  kind: {op.kind}   family: {op.family}   cost: {op.cost}   version: {op.version}"
            f"   deterministic: {op.deterministic}\n")
    return head + "\n" + "\n".join("  " + line for line in op.doc().splitlines())


def run_ops(args) -> int:
    from ..default_registry import registry

    reg = registry()
    if args.name:
        op = reg.get(args.name)
        if op is None:
            close = reg.suggest(args.name)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            print(f"error: unknown operator {args.name!r}{hint}", file=sys.stderr)
            return 1
        if args.format == "json":
            print(json.dumps(op_info(op), indent=2))
        else:
            print(op_text(op))
        return 0
    ops = [o for o in reg if not args.family or o.family == args.family]
    if args.format == "json":
        print(json.dumps([op_info(o) for o in ops], indent=2))
        return 0
    width = max((len(o.name) for o in ops), default=10)
    for o in ops:
        print(f"{o.name:<{width}}  {o.kind:<8}  {o.family:<12}  {o.cost:<10}  {o.summary()}")
    return 0
