"""``autodp search DATA``: find a cleaning strategy automatically (see ``docs/search.md``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["register", "run", "build_config"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search",
        help="search for a strategy that makes the fine-tuned model better (offline by default)",
        description="Profile DATA, search on a sample, evaluate candidates by fine-tuning and judging, and write "
        "the best .dp strategy, the processed data and a report to --out (default runs/<data name>/).",
    )
    p.add_argument("data", help="jsonl / json / parquet file or Hugging Face datasets folder")
    p.add_argument("--out", help="output folder (default runs/<data name>)")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("agent")
    g.add_argument("--agent", choices=["offline", "random", "llm", "automl"], default="offline",
                   help="offline: built-in evolutionary proposer (default); random: random search baseline; "
                   "llm: an LLM through an OpenAI-compatible endpoint; automl: AutoML-agent-style LLM baseline")
    g.add_argument("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--llm-model", default="gpt-4o-mini")
    g.add_argument("--llm-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--llm-structured", choices=["auto", "on", "off"], default="auto",
                   help="structured output with the .dp JSON Schema (auto: try, fall back to a lenient parse)")
    g.add_argument("--strategies", help="folder of curated .dp files to seed the offline proposer (default strategies/)")
    b = p.add_argument_group("budget")
    b.add_argument("--rounds", type=int, default=3)
    b.add_argument("-k", "--candidates", type=int, default=4, help="strategies per round (the agent may choose within --k-min/--k-max)")
    b.add_argument("--k-min", type=int, default=1)
    b.add_argument("--k-max", type=int, default=8)
    b.add_argument("--max-finetunes", type=int, help="stop after this many fine-tune runs")
    b.add_argument("--max-time", type=float, help="stop after this many seconds of wall time")
    b.add_argument("--patience", type=int, help="stop after this many rounds without improvement")
    b.add_argument("--max-agent-calls", type=int)
    b.add_argument("--max-repairs", type=int, default=3, help="repairs per invalid proposal (each counts as an agent call)")
    b.add_argument("--refills", type=int, default=1,
                   help="times per round the agent is asked to replace candidates whose output repeated an earlier one's")
    b.add_argument("--stop-file", help="stop when this file exists (default <out>/STOP)")
    a = p.add_argument_group("accelerations")
    a.add_argument("--sample-fraction", type=float, default=0.2)
    a.add_argument("--no-sampling", action="store_true", help="search on all rows")
    a.add_argument("--no-target-selection", action="store_true", help="no low-quality classifier: every row is a target")
    a.add_argument("--no-cache", action="store_true", help="reuse nothing across runs (executor and evaluator)")
    a.add_argument("--cache-dir", help="cache folder (default <out>/.cache)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval-preset", default="quick", help="autodp_eval preset (quick: the offline default, 5 epochs over the unprocessed search data, at least 100 steps; tiny: 300 steps; smoke: wiring check only)")
    e.add_argument("--eval-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an evaluation setting, e.g. train.epochs=6 (JSON values)")
    e.add_argument("--heldout", type=int, default=100, help="held-out questions for the search")
    e.add_argument("--final-heldout", type=int, default=100, help="other held-out questions for the final evaluation")
    e.add_argument("--no-final", action="store_true", help="skip applying and evaluating on the full data")
    e.add_argument("--raw-heldout", action="store_true",
                   help="score held-out reference answers as they are (default: whitespace runs collapsed)")
    e.add_argument("--epochs-protocol", action="store_true",
                   help="train each arm for the preset's epochs over its own rows (default: every arm trains the "
                   "same number of steps, the preset's epochs over the unprocessed search data)")
    r = p.add_argument_group("run")
    r.add_argument("--resume", action="store_true", help="continue the search journaled in --out")
    r.add_argument("--force", action="store_true", help="start over even if --out holds a journal")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--json", action="store_true", help="print the result summary as JSON")
    p.set_defaults(func=run)


def _overrides(items: list[str]) -> dict:
    out: dict = {}
    for it in items:
        key, _, val = it.partition("=")
        try:
            v = json.loads(val)
        except json.JSONDecodeError:
            v = val
        d = out
        parts = key.split(".")
        for k in parts[:-1]:
            d = d.setdefault(k, {})
        d[parts[-1]] = v
    return out


def build_config(args):
    from .agents import LLMConfig
    from .budget import Budget
    from .loop import SearchConfig

    out = args.out or str(Path("runs") / (Path(args.data).stem or "search"))
    llm = None
    if args.agent in ("llm", "automl"):
        llm = LLMConfig(base_url=args.llm_base_url, model=args.llm_model, api_key_env=args.llm_api_key_env,
                        structured=args.llm_structured)
    budget = Budget(max_rounds=args.rounds, max_finetunes=args.max_finetunes, max_wall_s=args.max_time,
                    patience=args.patience, max_agent_calls=args.max_agent_calls, max_repairs=args.max_repairs,
                    stop_file=args.stop_file)
    return SearchConfig(
        data=args.data, out_dir=out, seed=args.seed, agent=args.agent, llm=llm, k=args.candidates,
        k_min=args.k_min, k_max=max(args.k_max, args.candidates), refills=args.refills, budget=budget, sampling=not args.no_sampling,
        sample_fraction=args.sample_fraction, target_selection=not args.no_target_selection, cache=not args.no_cache,
        cache_dir=args.cache_dir, eval_preset=args.eval_preset, eval_overrides=_overrides(args.eval_set),
        heldout_n=args.heldout, final_heldout_n=args.final_heldout, resume=args.resume, final=not args.no_final,
        strategies_dir=args.strategies or "auto", quiet=args.quiet, same_steps=not args.epochs_protocol,
        tidy_heldout=not args.raw_heldout,
    )


def run(args) -> int:
    import os

    # model-loading progress bars would interleave with the search's own progress lines
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from .journal import Journal, JournalMismatch, out_dir_problem
    from .loop import run_search

    if not Path(args.data).exists():
        print(f"error: no such file or folder: {args.data}", file=sys.stderr)
        return 2
    cfg = build_config(args)
    if problem := out_dir_problem(cfg.out_dir, args.data):  # never writes onto its input or into a folder not its own
        print(f"error: {problem}", file=sys.stderr)
        return 2
    j = Journal(Path(cfg.out_dir) / "journal")
    if j.exists() and not (args.resume or args.force):
        print(f"error: {cfg.out_dir} holds a search journal; pass --resume to continue it, --force to start over, "
              "or choose another --out", file=sys.stderr)
        return 2
    from autodp_dsl.io import DataError
    from autodp_eval.errors import EvalError

    try:
        res = run_search(cfg)
    except (JournalMismatch, DataError, EvalError) as e:  # bad input or settings: one clear line
        print(f"error: {e}", file=sys.stderr)
        return 2
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
    elif not args.quiet:
        print(f"best strategy: {res.out_dir / 'best.dp'}; report: {res.out_dir / 'report.html'} ({res.seconds:.0f} s)")
    return 0
