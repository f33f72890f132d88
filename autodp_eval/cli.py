"""``autodp eval``: compare a model fine-tuned on CANDIDATE with one fine-tuned on the baseline.

Contributed to the ``autodp`` command through the ``autodp.commands`` entry point
(``register(subparsers)``); also runs as ``python -m autodp_eval eval ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# The exit codes of the whole ``autodp`` command (docs/cli.md). ``eval`` uses OK, FAILED (no question
# could be judged), USAGE (bad input or configuration, as docs/eval.md states), INTERNAL and INTERRUPTED.
from autodp_backends.exitcodes import FAILED, INTERNAL, INTERRUPTED, OK, USAGE

__all__ = ["register", "run"]

EPILOG = """examples:
  autodp eval cleaned.jsonl --baseline raw.jsonl
  autodp eval cleaned.jsonl --baseline raw.jsonl --heldout questions.jsonl --json
  autodp eval cleaned.jsonl --baseline raw.jsonl --judge openai --base-url http://127.0.0.1:8000/v1 --model qwen
  autodp eval cleaned.jsonl --baseline raw.jsonl --preset smollm2-lora --set train.max_steps=50
  autodp eval cleaned.jsonl --baseline raw.jsonl --replicates 3 --placebo
  autodp eval --calibrate raw.jsonl --replicates 3        # what can these settings detect on this data?

Without --heldout, --heldout-n questions are split off the baseline with a fixed seed (reported).
Results, trained arms and answers are memoised in the cache directory (--cache-dir, $AUTODP_CACHE_DIR/eval,
default ./.autodp/eval-cache)."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an argparse ``_SubParsersAction``."""
    p = subparsers.add_parser(
        "eval",
        help="fine-tune on two data sets and report the win rate of the first",
        description="Fine-tune one model on CANDIDATE and one on --baseline with the same recipe, answer "
        "held-out questions with both, judge them pairwise and report the candidate's win rate with a "
        "bootstrap confidence interval.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "candidate", nargs="?", help="training data of the candidate arm (.jsonl, .json or .parquet)"
    )
    p.add_argument("--baseline", help="training data of the baseline arm (usually the raw data)")
    p.add_argument(
        "--replicates",
        type=int,
        help="train every arm R times with paired seeds; R >= 2 puts training variance in the interval "
        "(default 1: it does not)",
    )
    p.add_argument(
        "--placebo",
        action="store_true",
        help="also train arms that drop as many random baseline rows as the candidate dropped, and say "
        "whether the candidate beats them",
    )
    p.add_argument("--placebo-seed", type=int, help="seed of the placebo's random drops (default 0)")
    p.add_argument(
        "--calibrate",
        metavar="DATA",
        help="instead of a comparison: run null comparisons (random drops of DATA against DATA) and print "
        "the smallest effect these settings detect (alpha 0.05, power 0.8)",
    )
    p.add_argument("--comparisons", type=int, default=5, help="--calibrate: null comparisons (default 5)")
    p.add_argument(
        "--drop-fraction", type=float, default=0.05, help="--calibrate: share of rows each null drop removes"
    )
    held = p.add_mutually_exclusive_group()
    held.add_argument(
        "--heldout", help="held-out questions with reference answers (.jsonl, .json or .parquet)"
    )
    held.add_argument(
        "--heldout-n", type=int, help="split this many questions off the baseline (default 200)"
    )
    p.add_argument("--heldout-seed", type=int, help="seed of the held-out split (default 0)")
    p.add_argument(
        "--preset",
        default="screen",
        help="screen (default: the tiny recipe, 5 paired replicates, placebo arms), confirm (10 replicates), "
        "tiny (one trained pair, no placebo), smoke or smollm2-lora",
    )
    p.add_argument("--config", help="JSON or YAML file of EvalConfig fields, merged over the preset")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.max_steps=400 (repeatable; VALUE is JSON or a string)",
    )
    p.add_argument(
        "--judge", choices=["likelihood", "openai", "vllm"], help="which judge (default: likelihood)"
    )
    p.add_argument(
        "--base-url", help="OpenAI-compatible endpoint of the judge, e.g. http://127.0.0.1:8000/v1"
    )
    p.add_argument("--model", help="judge model name (openai) or path (vllm)")
    p.add_argument(
        "--api-key-env", help="environment variable holding the judge's API key (default OPENAI_API_KEY)"
    )
    p.add_argument(
        "--base-model", help="model to fine-tune: tiny-llama, smollm2-135m-instruct or a HF model path"
    )
    p.add_argument("--method", choices=["full", "lora"], help="full fine-tuning or LoRA")
    p.add_argument("--epochs", type=int, help="train by epochs instead of the preset's fixed step count")
    p.add_argument("--max-steps", type=int, help="optimizer steps per arm (the tiny preset: 300)")
    p.add_argument("--threads", type=int, help="torch threads per process (default 1)")
    p.add_argument(
        "--workers", type=int, help="arms trained at once, one process each (default 1; 2 on a 2-core machine)"
    )
    p.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], help="where to train and generate (default cpu)"
    )
    p.add_argument("--cache-dir", help="memo cache directory")
    p.add_argument("--no-cache", action="store_true", help="use a temporary cache, deleted afterwards")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
    p.set_defaults(func=run)
    return p


def _set(overrides: dict[str, Any], dotted: str, value: Any) -> None:
    node = overrides
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {dotted}: {part} is not a section")
    node[leaf] = value


def _config(args: argparse.Namespace) -> Any:
    import yaml

    from . import EvalConfig
    from .errors import EvalConfigError, EvalInputError

    overrides: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise EvalInputError(f"no such config file: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise EvalConfigError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise EvalConfigError(f"{path} must hold a mapping of EvalConfig fields")
        overrides = loaded
    for item in args.set:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise EvalConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        _set(overrides, key.strip(), value)
    flags = {
        "judge.kind": args.judge,
        "judge.base_url": args.base_url,
        "judge.model": args.model,
        "judge.api_key_env": args.api_key_env,
        "train.model": args.base_model,
        "train.method": args.method,
        "train.epochs": args.epochs,
        "train.max_steps": args.max_steps,
        "threads": args.threads,
        "workers": args.workers,
        "device": args.device,
        "heldout_n": args.heldout_n,
        "heldout_seed": args.heldout_seed,
        "replicates": args.replicates,
        "placebo": args.placebo or None,
        "placebo_seed": args.placebo_seed,
    }
    if args.epochs is not None and args.max_steps is None:
        flags["train.max_steps"] = None  # --epochs alone means: train by epochs
        _set(overrides, "train.max_steps", None)
    for k, v in flags.items():
        if v is not None:
            _set(overrides, k, v)
    return EvalConfig.preset(args.preset, **overrides)


def _validation_message(e: Any) -> str:
    errs = e.errors()
    first = errs[0]
    loc = ".".join(str(x) for x in first.get("loc", ())) or "config"
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"invalid configuration: {loc}: {first.get('msg', 'invalid')}{more}"


def _heldout_records(path: str, config: Any) -> list[dict[str, Any]]:
    """The held-out file's records, checked before any training: questions in an ``instruction``
    column, and reference answers in ``output`` when the judge scores references (likelihood)."""
    from ._data import load_rows, read_records
    from .errors import EvalInputError

    records = read_records(path)
    needs_refs = config.judge.kind == "likelihood"
    rows = load_rows(records, category_column=None, what=f"held-out data {path}", require_output=needs_refs)
    if not rows:
        raise EvalInputError(f"the held-out set {path} is empty")
    if needs_refs and not any(r["output"].strip() for r in rows):
        raise EvalInputError(
            f"held-out data {path} has no reference answers in its 'output' column; the likelihood judge scores them"
        )
    return records


def internal_error(e: BaseException) -> str:
    """The one line for an exception nobody expected (a bug), as ``autodp``'s guard words it."""
    msg = " ".join(str(e).split()) or "(no message)"
    return f"internal error: {type(e).__name__}: {msg[:500]} (set AUTODP_DEBUG=1 for the traceback)"


def run(args: argparse.Namespace) -> int:
    """Run ``autodp eval``; returns the exit code (``autodp_backends.exitcodes``): OK, FAILED when no question
    could be judged, USAGE for bad input or configuration, INTERNAL for a bug, INTERRUPTED."""
    from pydantic import ValidationError

    from .errors import EvalConfigError, EvalError, EvalInputError

    def err(msg: str) -> None:
        print(f"autodp eval: error: {msg}", file=sys.stderr)

    try:
        if args.calibrate is not None:
            if args.candidate is not None or args.baseline is not None or args.placebo:
                raise EvalConfigError("--calibrate DATA takes no CANDIDATE, --baseline or --placebo")
        elif args.candidate is None or args.baseline is None:
            raise EvalConfigError("give CANDIDATE and --baseline BASELINE (or --calibrate DATA)")
        config = _config(args)
        for name, path in (
            ("candidate", args.candidate),
            ("baseline", args.baseline),
            ("calibration data", args.calibrate),
            ("heldout", args.heldout),
        ):
            if path is not None and not Path(path).is_file():
                raise EvalInputError(f"{name} file not found: {path}")
        heldout: Any = None if args.heldout is None else _heldout_records(args.heldout, config)
        from ._calibrate import calibrate
        from ._evaluate import evaluate

        log = None if args.quiet else (lambda m: print(f"[eval] {m}", file=sys.stderr, flush=True))
        with tempfile.TemporaryDirectory(prefix="autodp-eval-") as tmp:
            cache_dir = tmp if args.no_cache else args.cache_dir
            if args.calibrate is not None:
                cal = calibrate(
                    args.calibrate,
                    heldout,
                    config,
                    cache_dir,
                    comparisons=args.comparisons,
                    drop_fraction=args.drop_fraction,
                    log=log,
                )
                print(cal.model_dump_json(indent=2) if args.json else cal.summary())
                return OK
            result = evaluate(args.candidate, args.baseline, heldout, config, cache_dir=cache_dir, log=log)
    except ValidationError as e:
        err(_validation_message(e))
        return USAGE
    except EvalError as e:
        err(str(e))
        return USAGE
    except (OSError, ValueError) as e:
        err(f"{type(e).__name__}: {e}")
        return USAGE
    except KeyboardInterrupt:
        err("interrupted")
        return INTERRUPTED
    except Exception as e:  # never a traceback for the user; AUTODP_DEBUG=1 shows it
        if os.environ.get("AUTODP_DEBUG"):
            raise
        err(internal_error(e))
        return INTERNAL
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(result.summary())
    if result.win_rate is None:
        err(f"no question could be judged ({result.failures} failures)")
        return FAILED
    return OK
