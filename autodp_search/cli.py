"""``autodp search DATA``: find a cleaning strategy automatically (see ``docs/search.md``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from autodp_backends import exitcodes

__all__ = ["register", "run", "build_config", "usage_error"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search",
        help="search for a strategy that makes the fine-tuned model better (offline by default)",
        description="Profile DATA, search on a sample, evaluate candidates by fine-tuning and judging, and write "
        "the best .dp strategy, the processed data and a report to --out (default runs/<data name>/).",
    )
    p.add_argument("data", help="jsonl / json / parquet file or Hugging Face datasets folder")
    p.add_argument("--out", help="output folder (default runs/<data name>)")
    p.add_argument("--seed", type=_at_least(0), default=0)
    g = p.add_argument_group("agent")
    g.add_argument("--agent", choices=["offline", "random", "llm", "automl"], default="offline",
                   help="offline: built-in evolutionary proposer (default); random: random search baseline; "
                   "llm: an LLM through an OpenAI-compatible endpoint; automl: AutoML-agent-style LLM baseline")
    g.add_argument("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--llm-model", default="gpt-4o-mini",
                   help="a model served at --llm-base-url, or a backend spec: openai:MODEL@URL, local:smollm2, "
                   "local:/path/to/model, vllm:MODEL")
    g.add_argument("--llm-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--llm-structured", choices=["auto", "on", "off"], default="auto",
                   help="structured output with the .dp JSON Schema (auto: try, fall back to a lenient parse)")
    g.add_argument("--llm-timeout", type=_seconds, default=60.0,
                   help="seconds per request to the agent's model (bounded further by what --max-time leaves)")
    g.add_argument("--llm-retries", type=_at_least(0), default=2,
                   help="retries of a request after a transient failure (5xx, 429, timeout, refused connection)")
    g.add_argument("--llm-max-reply-chars", type=_at_least(100), default=100_000,
                   help="a longer reply is malformed: retried, never parsed or sent back")
    g.add_argument("--llm-max-prompt-chars", type=_at_least(2_000), default=60_000,
                   help="the history is summarised until the prompt fits")
    g.add_argument("--llm-context-tokens", type=_at_least(1_024), default=None,
                   help="the agent model's context in tokens; the history is summarised until the prompt and the "
                   "reply fit (local models: counted with their tokenizer, default their max length; endpoints: "
                   "estimated at 3 characters per token, unchecked when not given)")
    g.add_argument("--llm-grammar", choices=["auto", "on", "off"], default="auto",
                   help="decode under the .dp grammar (catalog + columns): auto = for in-process models (local:...); "
                   "on = also ask an OpenAI-compatible server for it (vLLM structured outputs)")
    g.add_argument("--max-steps", type=_at_least(1), default=30,
                   help="an agent's strategy with more steps is invalid")
    g.add_argument("--strategies", help="folder of curated .dp files to seed the offline proposer (default strategies/)")
    b = p.add_argument_group("budget")
    b.add_argument("--rounds", type=_at_least(1), default=3)
    b.add_argument("-k", "--candidates", type=_at_least(1), default=4,
                   help="strategies per round (the agent may choose within --k-min/--k-max)")
    b.add_argument("--k-min", type=_at_least(1), default=1)
    b.add_argument("--k-max", type=_at_least(1), help="(default: 8, or -k when more)")
    b.add_argument("--max-finetunes", type=_at_least(1, "the baseline is a fine-tune run"),
                   help="stop the search after this many fine-tune runs; the baseline is the first, so at least 1 "
                   "(the final evaluation's two come on top; --no-final skips them)")
    b.add_argument("--max-time", type=_seconds, help="stop after this many seconds of wall time")
    b.add_argument("--patience", type=_at_least(1), help="stop after this many rounds without improvement")
    b.add_argument("--max-agent-calls", type=_at_least(1))
    b.add_argument("--max-repairs", type=_at_least(0), default=3,
                   help="repairs per invalid proposal (each counts as an agent call)")
    b.add_argument("--refills", type=_at_least(0), default=1,
                   help="times per round the agent is asked to replace candidates whose output repeated an earlier one's")
    b.add_argument("--stop-file", help="stop when this file exists (default <out>/STOP)")
    a = p.add_argument_group("accelerations")
    a.add_argument("--sample-fraction", type=_fraction, default=0.2, help="share of the rows searched on, in (0, 1]")
    a.add_argument("--no-sampling", action="store_true", help="search on all rows")
    a.add_argument("--no-target-selection", action="store_true", help="no low-quality classifier: every row is a target")
    a.add_argument("--target-judge", choices=("weak", "offline"), default="weak",
                   help="what labels the target selector: weak (rules over cheap signals) or offline (MiniLM "
                        "question-answer relevance and consensus on a few hundred rows; docs/selector.md)")
    a.add_argument("--no-cache", action="store_true", help="reuse nothing across runs (executor and evaluator)")
    a.add_argument("--cache-dir", help="cache folder (default <out>/.cache)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval-preset", default="quick", help="autodp_eval preset (quick: the offline default, 5 epochs over the unprocessed search data, at least 100 steps; tiny: 300 steps; smoke: wiring check only)")
    e.add_argument("--eval-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an evaluation setting, e.g. train.epochs=6 (JSON values)")
    e.add_argument("--heldout", type=_at_least(1), default=100, help="held-out questions for the search")
    e.add_argument("--final-heldout", type=_at_least(1), default=100,
                   help="other held-out questions for the final evaluation")
    e.add_argument("--no-final", action="store_true", help="skip applying and evaluating on the full data")
    e.add_argument("--verdict-replicates", type=_at_least(1), default=3,
                   help="the final verdict's paired replicates on fresh seeds, each with a placebo arm (default 3)")
    e.add_argument("--race-replicates", type=_at_least(1), default=3,
                   help="racing: at most this many paired replicates per candidate in the rounds; more go to the "
                        "candidates not separated from the best (default 3; 1: one replicate each, no racing)")
    e.add_argument("--race-finetunes", type=_at_least(0), default=4,
                   help="racing: fine-tunes per round spent on extra replicates (default 4)")
    e.add_argument("--noise-replicates", type=_noise_replicates, default=3,
                   help="the noise band: replicates of the placebo arms at 10%% and 30%% random drops, measured once "
                        "(default 3; 0: no band, no placebo rule)")
    e.add_argument("--eval-workers", type=_at_least(1), default=None,
                   help="arms trained at once, one process each (default 1; 2 on a 2-core machine)")
    e.add_argument("--tidy-heldout", action="store_true",
                   help="collapse whitespace runs in held-out references (default: as the data has them; "
                        "tidying favours whitespace-normalising strategies)")
    e.add_argument("--epochs-protocol", action="store_true",
                   help="train each arm for the preset's epochs over its own rows (default: every arm trains the "
                   "same number of steps, the preset's epochs over the unprocessed search data)")
    r = p.add_argument_group("run")
    r.add_argument("--resume", action="store_true", help="continue the search journaled in --out")
    r.add_argument("--force", action="store_true", help="start over even if --out holds a journal")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--json", action="store_true", help="print the result summary as JSON")
    p.set_defaults(func=run)


# Domains of the numeric options, checked while parsing: a bad value is argparse's one-line usage
# error (exit 2) before anything is read or written.


def _at_least(lo: int, why: str = ""):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {v}" + (f" ({why})" if why else ""))
        return v

    return parse


def _noise_replicates(text: str) -> int:
    v = _at_least(0)(text)
    if v == 1:  # the band's spread is its replicates' sd: one replicate has none
        raise argparse.ArgumentTypeError("must be 0 (no noise band) or at least 2, got 1 (one replicate has no spread)")
    return v


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _seconds(text: str) -> float:
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v


def _fraction(text: str) -> float:
    v = _number(text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text} (--no-sampling searches on all rows)")
    return v


def _overrides(items: list[str]) -> dict:
    out: dict = {}
    for it in items:
        key, eq, val = it.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--eval-set expects KEY=VALUE (an evaluation setting, e.g. train.epochs=6), got {it!r}")
        try:
            v = json.loads(val)
        except json.JSONDecodeError:
            v = val
        d = out
        parts = key.strip().split(".")
        for k in parts[:-1]:
            d = d.setdefault(k, {})
            if not isinstance(d, dict):
                raise ValueError(f"--eval-set {key}: {k} is set to a value, not a section")
        d[parts[-1]] = v
    return out


def _k_max(args) -> int:
    return args.k_max if args.k_max is not None else max(8, args.candidates)


def usage_error(args) -> str | None:
    """What is wrong with arguments that are each in their domain but not together, or with the
    evaluation settings; None when nothing is. Checked before anything is read or written."""
    if args.target_judge != "weak" and args.no_target_selection:
        return f"--target-judge {args.target_judge} trains the target selector, which --no-target-selection turns off"
    k_max = _k_max(args)
    if args.k_min > k_max:
        return f"--k-min {args.k_min} is greater than --k-max {k_max}"
    if not args.k_min <= args.candidates <= k_max:
        return f"-k {args.candidates} is outside --k-min {args.k_min} .. --k-max {k_max}"
    from pydantic import ValidationError

    from autodp_eval import EvalConfig
    from autodp_eval.errors import EvalError

    try:
        EvalConfig.preset(args.eval_preset, **_overrides(args.eval_set))
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first.get("loc", ())) or "config"
        return f"invalid evaluation setting (--eval-preset/--eval-set): {loc}: {first.get('msg', 'invalid')}"
    except (EvalError, ValueError) as e:
        return str(e)
    return None


def build_config(args):
    from .agents import LLMConfig
    from .budget import Budget
    from .config import SearchConfig

    out = args.out or str(Path("runs") / (Path(args.data).stem or "search"))
    llm = None
    if args.agent in ("llm", "automl"):
        llm = LLMConfig(base_url=args.llm_base_url, model=args.llm_model, api_key_env=args.llm_api_key_env,
                        structured=args.llm_structured, timeout_s=args.llm_timeout, max_retries=args.llm_retries,
                        max_reply_chars=args.llm_max_reply_chars, max_prompt_chars=args.llm_max_prompt_chars,
                        grammar=args.llm_grammar, context_tokens=args.llm_context_tokens)
    budget = Budget(max_rounds=args.rounds, max_finetunes=args.max_finetunes, max_wall_s=args.max_time,
                    patience=args.patience, max_agent_calls=args.max_agent_calls, max_repairs=args.max_repairs,
                    stop_file=args.stop_file)
    return SearchConfig(
        data=args.data, out_dir=out, seed=args.seed, agent=args.agent, llm=llm, k=args.candidates,
        k_min=args.k_min, k_max=_k_max(args), refills=args.refills, budget=budget, sampling=not args.no_sampling,
        sample_fraction=args.sample_fraction, target_selection=not args.no_target_selection,
        target_judge=args.target_judge, cache=not args.no_cache,
        cache_dir=args.cache_dir, eval_preset=args.eval_preset,
        eval_overrides=_overrides(args.eval_set), eval_workers=args.eval_workers or 1,
        heldout_n=args.heldout, final_heldout_n=args.final_heldout, resume=args.resume, final=not args.no_final,
        strategies_dir=args.strategies or "auto", quiet=args.quiet, same_steps=not args.epochs_protocol,
        tidy_heldout=args.tidy_heldout, max_steps=args.max_steps, verdict_replicates=args.verdict_replicates,
        race_replicates=args.race_replicates, race_finetunes=args.race_finetunes, noise_replicates=args.noise_replicates,
    )


def run(args) -> int:
    import os

    # model-loading progress bars would interleave with the search's own progress lines
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from .errors import BackendFailure, NoValidStrategy, SettingsError
    from .journal import Journal, JournalMismatch, out_dir_problem
    from .loop import run_search

    problem = usage_error(args)
    if problem:
        return _error(problem, exitcodes.USAGE)
    if not Path(args.data).exists():
        return _error(f"no such file or folder: {args.data}", exitcodes.FAILED)
    cfg = build_config(args)
    if problem := out_dir_problem(cfg.out_dir, args.data):  # never writes onto its input or into a folder not its own
        return _error(problem, exitcodes.USAGE)
    if problem := _cache_dir_problem(args.cache_dir, args.data):
        return _error(problem, exitcodes.USAGE)
    j = Journal(Path(cfg.out_dir) / "journal")
    if j.exists() and not (args.resume or args.force):
        return _error(f"{cfg.out_dir} holds a search journal; pass --resume to continue it, --force to start over, "
                      "or choose another --out", exitcodes.USAGE)
    from autodp_dsl.io import DataError
    from autodp_eval.errors import EvalError, EvalInputError

    try:
        res = run_search(cfg)
    except (JournalMismatch, SettingsError) as e:
        return _error(str(e), exitcodes.USAGE)
    except (DataError, EvalInputError, OSError) as e:
        return _error(str(e), exitcodes.FAILED)
    except EvalError as e:  # settings the evaluator cannot run with
        return _error(str(e), exitcodes.USAGE)
    except NoValidStrategy as e:
        return _error(f"no valid strategy: {e}", exitcodes.NO_STRATEGY)
    except BackendFailure as e:
        return _error(str(e), exitcodes.BACKEND)
    summary = {
        "out": str(res.out_dir),
        "best": res.best.cid if res.best else None,
        "best_delta": res.best.delta if res.best else None,
        "final": (res.final or {}).get("eval", {}) and {k: res.final["eval"].get(k) for k in ("win_rate", "ci_low", "ci_high", "n")},
        "stop_reason": res.stop_reason,
        "seconds": round(res.seconds, 1),
    }
    if args.json:
        print(json.dumps(summary))
    if res.best is None:
        return _error(f"no valid strategy: {_why_none(res.records)} before the search stopped ({res.stop_reason}); "
                      f"see {res.out_dir / 'report.html'}", exitcodes.NO_STRATEGY)
    if not (args.json or args.quiet):
        print(f"best strategy: {res.out_dir / 'best.dp'}; report: {res.out_dir / 'report.html'} ({res.seconds:.0f} s)")
    return exitcodes.OK


def _cache_dir_problem(cache_dir: str | None, data: str) -> str | None:
    """Why ``--cache-dir`` may not be used (None: it may): the evaluator and the executor write models,
    answers and nodes there, so it must be a folder (or not exist yet), and neither be the data, nor
    inside a data folder, nor hold the data."""
    if cache_dir is None:
        return None
    import os

    real, real_data = os.path.realpath(cache_dir), os.path.realpath(data)

    def inside(child: str, parent: str) -> bool:
        return child.startswith(parent.rstrip(os.sep) + os.sep)

    if real == real_data or (os.path.exists(cache_dir) and os.path.samefile(cache_dir, data)):
        return f"--cache-dir {cache_dir} is the data {data}; the search writes its cache there: choose another --cache-dir"
    if os.path.isdir(data) and inside(real, real_data):
        return f"--cache-dir {cache_dir} is inside the data folder {data}; autodp never writes into it: choose another --cache-dir"
    if inside(real_data, real):
        return f"--cache-dir {cache_dir} holds the data {data}; choose a cache folder of its own"
    if os.path.lexists(cache_dir) and not os.path.isdir(cache_dir):
        return f"--cache-dir {cache_dir} exists and is not a folder"
    return None


def _why_none(records) -> str:
    if not records:
        return "no candidate was proposed"
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    return "no candidate was scored (" + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + ")"


def _error(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code
