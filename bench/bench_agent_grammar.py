"""Parse and lint rates of a small local LLM agent, constrained by the .dp grammar and not.

    python bench/bench_agent_grammar.py [--contexts 10] [--k 5] [--out bench/agent_grammar.json]

SmolLM2-135M-Instruct (``local:smollm2``, offline) proposes strategies in ``--contexts`` distinct
search contexts (rounds 1..N, each with a synthetic scored history drawn from the curated
strategies), at temperature 0.8: ``--k`` grammar-constrained documents per context, and one
unconstrained request per context asking for ``--k`` strategies as JSON (the prompt an API model
gets). Counted per proposal: parses (no YAML/syntax error), lint clean before any repair (the
language's lint plus the agent path's rules), empty; and distinct canonical strategies. Results
go to ``--out`` after every context, so a run cut short keeps what it measured; ``--resume`` goes
on from such a file (the contexts are deterministic: context N has the same history and seed in
every run), skipping the contexts it already holds.

Nothing here shows that the model *searches* well: that needs a real endpoint and the comparison
of docs/search.md (``--agent llm`` vs ``offline`` vs ``random`` on the same budget).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from autodp_dsl import compile_text
from autodp_dsl.types import parse_type
from autodp_search.agents import AgentContext, AgentFailure, CandidateView, LLMAgent, LLMConfig
from autodp_search.agents._ir_tools import strategy_key
from autodp_search.boundary import agent_diagnostics, param_catalog
from autodp_search.prompts import catalog_from_registry

COLUMNS = (("instruction", "str"), ("input", "str"), ("output", "str"), ("lowq", "float"))
PROFILE = "rows: 1200 (aggregates only; groups under 20 rows are hidden as <20)\nrates: language en: all but <20 rows"


def contexts(n: int, k: int) -> list[AgentContext]:
    cat = catalog_from_registry()
    curated = [p.read_text() for p in sorted(Path("strategies").glob("*.dp"))]
    rng = random.Random(0)
    out = []
    for rnd in range(1, n + 1):
        hist = []
        for i, text in enumerate(rng.sample(curated, min(len(curated), rnd - 1 if rnd > 1 else 0) or 0)):
            d = round(rng.uniform(-0.1, 0.15), 3)
            hist.append(CandidateView(max(1, rnd - 1), f"r{max(1, rnd - 1)}c{i + 1}", text, "ok", delta=d,
                                      win_rate=0.5 + d, ci_low=0.4 + d, ci_high=0.6 + d, rows_in=">1180",
                                      rows_out=f"~{rng.randint(30, 58) * 20}"))
        out.append(AgentContext(task="", round=rnd, k=k, k_min=1, k_max=8, columns=COLUMNS, profile_text=PROFILE,
                                catalog=cat, history=tuple(hist), seed=rnd, target_column="lowq"))
    return out


def judge(texts: list[str]) -> dict:
    cols = {n: parse_type(t) for n, t in COLUMNS}
    pc = param_catalog(catalog_from_registry())
    parsed = clean = empty = 0
    keys = set()
    for t in texts:
        if not t.strip():
            empty += 1
            continue
        res = compile_text(t, columns=cols, level="canonical")
        syntax = any(d.code.startswith(("yaml", "parse", "syntax", "invalid-step", "document")) for d in res.diagnostics)
        parsed += not syntax
        if res.ok and not agent_diagnostics(res.strategy, pc, 30):
            clean += 1
            keys.add(strategy_key(res.strategy))
    return {"proposals": len(texts), "parsed": parsed, "lint_clean": clean, "empty": empty, "distinct_clean": len(keys)}


def resumed(out: Path, res: dict, k: int) -> int:
    """Load a cut-short run's results into ``res``; the number of contexts it holds."""
    if not out.exists():
        return 0
    old = json.loads(out.read_text())
    same = (old.get("model"), old.get("temperature")) == (res["model"], res["temperature"])
    if not same or len(old["constrained"]) != k * old["contexts"]:
        raise SystemExit(f"{out} holds a run with other settings; pass another --out")
    res.update({key: old[key] for key in ("contexts", "constrained", "unconstrained", "seconds")})
    print(f"resuming after {old['contexts']} context(s) from {out}", flush=True)
    return int(old["contexts"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contexts", type=int, default=10)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out", default="bench/agent_grammar.json")
    ap.add_argument("--resume", action="store_true", help="go on from the contexts --out already holds")
    a = ap.parse_args()
    cons = LLMAgent(LLMConfig(model="local:smollm2", temperature=0.8, malformed_retries=0, grammar="on"))
    free = LLMAgent(LLMConfig(model="local:smollm2", temperature=0.8, malformed_retries=0, grammar="off",
                              max_tokens=600), backend=None)
    res: dict = {"model": "local:smollm2 (SmolLM2-135M-Instruct)", "temperature": 0.8, "contexts": 0,
                 "constrained": [], "unconstrained": [], "seconds": {"constrained": 0.0, "unconstrained": 0.0}}
    done = resumed(Path(a.out), res, a.k) if a.resume else 0
    for ctx in contexts(a.contexts, a.k)[done:]:
        t = time.perf_counter()
        try:
            texts = [p.dp_text for p in cons.propose(ctx)]
        except AgentFailure as e:
            texts = [""] * a.k
            print("constrained failure:", e)
        res["seconds"]["constrained"] += time.perf_counter() - t
        res["constrained"] += texts
        free._backend = cons.backend  # the same loaded model
        t = time.perf_counter()
        try:
            ftexts = [p.dp_text for p in free.propose(ctx)]
        except AgentFailure:
            ftexts = []
        res["seconds"]["unconstrained"] += time.perf_counter() - t
        res["unconstrained"].append(ftexts)
        res["contexts"] += 1
        summary = {"constrained": judge(res["constrained"]),
                   "unconstrained": {**judge([x for f in res["unconstrained"] for x in f]),
                                     "requests": len(res["unconstrained"]),
                                     "requests_with_a_strategy": sum(bool(f) for f in res["unconstrained"])}}
        res["summary"] = summary
        Path(a.out).write_text(json.dumps(res, indent=1))
        print(ctx.round, json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
