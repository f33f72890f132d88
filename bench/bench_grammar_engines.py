"""Grammar engines for the in-process agent: llguidance (the one the local backend uses) vs xgrammar.

    python bench/bench_grammar_engines.py [--contexts 10] [--k 5] [--engines llguidance,xgrammar]
                                          [--out bench/grammar_engines.json] [--first N]
    python bench/bench_grammar_engines.py --merge A.json B.json ... --out ALL.json
    python bench/bench_grammar_engines.py --replay ALL.json --out REPLAY.json

The setup of ``bench/bench_agent_grammar.py`` (SmolLM2-135M-Instruct, ``local:smollm2``, offline;
the same ``--contexts`` search contexts; ``--k`` constrained documents per context at temperature
0.8; the same judge), run once per engine, the engines interleaved context by context so a run cut
short compares them on the same contexts. The only thing swapped is the logits processor the local
backend builds for ``Sampling.grammar`` (``stdlib_ops.backends.local._GrammarMask``): prompts,
batching, seeds and validation are the agent's own path.

Measured per engine: parse %, lint clean % before repair, distinct clean strategies, empty; the
grammar's compile time (grammar text to matchers ready, and the first mask); the mask cost per
generated token (the engine's work: advancing the matcher and computing the allowed-token bitmask)
and, apart, the cost of applying the mask to the logits.

xgrammar does not read Lark: the agent's grammar (``dp_grammar``) is translated to xgrammar's EBNF
by ``lark_to_ebnf`` (the subset dp_grammar writes). xgrammar is optional: without it, the run says
so and measures llguidance alone. ``--first`` starts at a later context (a run split across
processes; the contexts and seeds do not depend on the split), ``--merge`` recombines the parts,
``--replay`` times the engines without the model on the documents a run generated. outlines is not measured separately: for context-free grammars
it is a front end to these two engines (llguidance by default).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agent_grammar import contexts, judge  # noqa: E402

__all__ = ["lark_to_ebnf"]

_LARK_TOKEN = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|/(?:[^/\\]|\\.)+/|[A-Za-z_][A-Za-z0-9_]*|[()|?*+]')


def _regex_to_ebnf(rx: str) -> str:
    """A regex of the subset dp_grammar writes (classes, groups, alternation, quantifiers, escaped
    literals) in xgrammar's EBNF."""
    out: list[str] = []
    i = 0
    while i < len(rx):
        c = rx[i]
        if c == "[":
            j = rx.index("]", i + 1)
            out.append(rx[i : j + 1])
            i = j + 1
        elif c == "{":
            j = rx.index("}", i)
            out[-1] += rx[i : j + 1]
            i = j + 1
        elif c in "?*+":
            out[-1] += c
            i += 1
        elif c in "()|":
            out.append(c)
            i += 1
        elif c == "\\":
            esc = rx[i + 1]
            out.append("[0-9]" if esc == "d" else json.dumps(esc))
            i += 2
        elif c in ".^$":
            raise ValueError(f"regex {rx!r}: {c!r} is outside the translated subset")
        else:
            out.append(json.dumps(c))
            i += 1
    # a quantifier after ")" belongs to the group: glue it back
    return re.sub(r"\) ([?*+]|\{)", r")\1", " ".join(out))


def lark_to_ebnf(lark: str) -> str:
    """dp_grammar's Lark (rules ``name: body``, JSON-quoted literals, /regex/ terminals, groups,
    ``| ? * +``) as xgrammar EBNF (``root`` is Lark's ``start``)."""
    rules = []
    for line in lark.splitlines():
        if not line.strip():
            continue
        name, body = line.split(":", 1)
        parts = []
        pos = 0
        body = body.strip()
        while pos < len(body):
            m = _LARK_TOKEN.match(body, pos)
            if not m:
                raise ValueError(f"cannot translate {body[pos:pos + 40]!r}")
            t = m.group(0)
            pos = m.end()
            if t.isspace():
                continue
            if t.startswith("/"):
                t = f"({_regex_to_ebnf(t[1:-1])})"
            elif t == "start":
                t = "root"
            if t in "?*+" and parts:
                parts[-1] += t
            else:
                parts.append(t)
        rules.append(f"{'root' if name.strip() == 'start' else name.strip()} ::= {' '.join(parts)}")
    return "\n".join(rules) + "\n"


class _Timer:
    def __init__(self):
        self.compile_s: list[float] = []
        self.first_mask_ms: list[float] = []
        self.mask_s = 0.0
        self.apply_s = 0.0
        self.tokens = 0


def _llguidance_mask(timer: _Timer):
    import numpy as np
    import torch

    from stdlib_ops.backends.local import _GrammarMask

    class Timed(_GrammarMask):
        def __init__(self, lltok, grammar, rows, prompt_len):
            t = time.perf_counter()
            super().__init__(lltok, grammar, rows, prompt_len)
            timer.compile_s.append(time.perf_counter() - t)
            self.first = True

        def __call__(self, input_ids, scores):
            t = time.perf_counter()
            if input_ids.shape[1] > self.prompt_len:
                for i, m in enumerate(self.matchers):
                    if not m.is_stopped() and not m.is_error():
                        m.consume_token(int(input_ids[i, -1]))
            live = [(i, m.compute_bitmask()) for i, m in enumerate(self.matchers) if not m.is_error()]
            t1 = time.perf_counter()
            going = sum(not m.is_stopped() for m in self.matchers)
            if self.first:
                timer.first_mask_ms.append((t1 - t) * 1000)
                self.first = False
            else:
                timer.mask_s += t1 - t
                timer.tokens += going
            n = scores.shape[1]
            for i, raw in live:  # as _GrammarMask applies it
                bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")[:n]
                allowed = np.zeros(n, dtype=bool)
                allowed[: len(bits)] = bits.astype(bool)
                scores[i, torch.from_numpy(~allowed).to(scores.device)] = float("-inf")
            timer.apply_s += time.perf_counter() - t1
            return scores

    return Timed


def _xgrammar_mask(timer: _Timer, backend):
    import xgrammar as xgr

    lm, tok = backend.load()
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=lm.config.vocab_size)

    class XgrMask:
        def __init__(self, _lltok, grammar, rows, prompt_len):
            t = time.perf_counter()
            compiled = xgr.GrammarCompiler(info, cache_enabled=False).compile_grammar(lark_to_ebnf(grammar))
            self.matchers = [xgr.GrammarMatcher(compiled) for _ in range(rows)]
            self.bitmask = xgr.allocate_token_bitmask(rows, info.vocab_size)
            timer.compile_s.append(time.perf_counter() - t)
            self.bad = [False] * rows
            self.prompt_len = prompt_len
            self.first = True

        def __call__(self, input_ids, scores):
            t = time.perf_counter()
            if input_ids.shape[1] > self.prompt_len:
                for i, m in enumerate(self.matchers):
                    if not m.is_terminated() and not self.bad[i] and not m.accept_token(int(input_ids[i, -1])):
                        self.bad[i] = True  # left unconstrained, as _GrammarMask does; its text fails validation
            live = [i for i, m in enumerate(self.matchers) if not self.bad[i] and not m.is_terminated()]
            xgr.reset_token_bitmask(self.bitmask)
            for i in live:
                self.matchers[i].fill_next_token_bitmask(self.bitmask, i)
            t1 = time.perf_counter()
            if self.first:
                timer.first_mask_ms.append((t1 - t) * 1000)
                self.first = False
            else:
                timer.mask_s += t1 - t
                timer.tokens += len(live)
            if live:  # the other rows' masks were reset to all-allowed
                xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
            timer.apply_s += time.perf_counter() - t1
            return scores

    return XgrMask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contexts", type=int, default=10)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--engines", default="llguidance,xgrammar")
    ap.add_argument("--out", default="bench/grammar_engines.json")
    ap.add_argument("--first", type=int, default=1, help="start at this context (to split a run across processes)")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="combine the outputs of split runs into --out")
    ap.add_argument("--replay", metavar="JSON", help="time the engines alone on the documents of an earlier run")
    a = ap.parse_args()
    if a.merge:
        return merge(a.merge, a.out)
    if a.replay:
        return replay(a.replay, a.out)

    import stdlib_ops.backends.local as local
    from autodp_search.agents import AgentFailure, LLMAgent, LLMConfig

    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    if "xgrammar" in engines:
        try:
            import xgrammar  # noqa: F401
        except ImportError as e:
            print(f"xgrammar is not installed ({e}): measuring llguidance alone", flush=True)
            engines.remove("xgrammar")
    agent = LLMAgent(LLMConfig(model="local:smollm2", temperature=0.8, malformed_retries=0, grammar="on"))
    backend = agent.backend
    t = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - t
    timers = {e: _Timer() for e in engines}
    setup: dict[str, float] = {}
    masks = {}
    for e in engines:
        t = time.perf_counter()
        if e == "llguidance":
            backend._ll_tokenizer(backend.load()[1])
            masks[e] = _llguidance_mask(timers[e])
        elif e == "xgrammar":
            masks[e] = _xgrammar_mask(timers[e], backend)
        else:
            raise SystemExit(f"error: unknown engine {e!r}; expected llguidance or xgrammar")
        setup[e] = time.perf_counter() - t  # the tokenizer's view, once per backend
    texts: dict[str, list[str]] = {e: [] for e in engines}
    gen_s = {e: 0.0 for e in engines}
    res: dict = {"model": "local:smollm2 (SmolLM2-135M-Instruct)", "temperature": 0.8, "k": a.k,
                 "model_load_s": round(load_s, 2), "contexts": 0, "first": a.first}
    original = local._GrammarMask
    try:
        for ctx in contexts(a.contexts, a.k)[a.first - 1 :]:
            for e in engines:
                local._GrammarMask = masks[e]
                agent.requests = ctx.round * 1000  # the same seeds for every engine
                t = time.perf_counter()
                try:
                    got = [p.dp_text for p in agent.propose(ctx)]
                except AgentFailure as err:
                    print(f"{e}: failure: {err}", flush=True)
                    got = []
                gen_s[e] += time.perf_counter() - t
                texts[e] += got + [""] * (a.k - len(got))
            res["contexts"] += 1
            res["engines"] = {}
            for e in engines:
                tm = timers[e]
                res["engines"][e] = {
                    **judge(texts[e]),
                    "tokenizer_setup_s": round(setup[e], 3),
                    "compile_ms_median": round(1000 * sorted(tm.compile_s)[len(tm.compile_s) // 2], 2) if tm.compile_s else None,
                    "first_mask_ms_median": round(sorted(tm.first_mask_ms)[len(tm.first_mask_ms) // 2], 2) if tm.first_mask_ms else None,
                    "mask_ms_per_token": round(1000 * tm.mask_s / tm.tokens, 4) if tm.tokens else None,
                    "apply_ms_per_token": round(1000 * tm.apply_s / tm.tokens, 4) if tm.tokens else None,
                    "masked_tokens": tm.tokens,
                    "generate_s": round(gen_s[e], 1),
                }
            res["texts"] = texts
            Path(a.out).write_text(json.dumps(res, indent=1))
            print(ctx.round, json.dumps(res["engines"]), flush=True)
    finally:
        local._GrammarMask = original


def replay(path: str, out: str) -> None:
    """The engines without the model: every document an earlier run generated (any engine), as
    tokens, fed to a fresh matcher of each engine; per token, the time to compute the mask and to
    advance the matcher. The same token sequences for both engines, so the comparison is direct."""
    import numpy as np
    from bench_agent_grammar import COLUMNS

    from autodp_search.agents.grammar import dp_grammar
    from autodp_search.prompts import catalog_from_registry
    from stdlib_ops.backends.local import TransformersBackend

    run = json.loads(Path(path).read_text())
    docs = sorted({t for ts in run["texts"].values() for t in ts if t})
    grammar = dp_grammar(catalog_from_registry(), list(COLUMNS))
    lm, tok = TransformersBackend("smollm2", memo=False).load()
    seqs = [tok(d + "\n" if not d.endswith("\n") else d, add_special_tokens=False)["input_ids"] for d in docs]
    res: dict = {"documents": len(docs), "tokens": sum(map(len, seqs)), "engines": {}}
    import llguidance
    import llguidance.hf

    lltok = llguidance.hf.from_tokenizer(tok)
    engines = {"llguidance": None}
    try:
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=lm.config.vocab_size)
        engines["xgrammar"] = None
    except ImportError:
        print("xgrammar is not installed: llguidance alone", flush=True)
    for e in engines:
        compile_ms, mask_s, step_s, n, rejected = [], 0.0, 0.0, 0, 0
        for seq in seqs:
            t = time.perf_counter()
            if e == "llguidance":
                m = llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0)
            else:
                m = xgr.GrammarMatcher(xgr.GrammarCompiler(info, cache_enabled=False).compile_grammar(lark_to_ebnf(grammar)))
                bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
            compile_ms.append(1000 * (time.perf_counter() - t))
            for tid in seq:
                t0 = time.perf_counter()
                if e == "llguidance":
                    allowed = np.frombuffer(m.compute_bitmask(), dtype=np.uint32)
                else:
                    m.fill_next_token_bitmask(bitmask, 0)
                    allowed = bitmask[0].numpy()
                t1 = time.perf_counter()
                ok = bool(allowed[tid // 32] >> (tid % 32) & 1)
                ok = ok and (m.consume_token(tid) if e == "llguidance" else m.accept_token(tid))
                step_s += time.perf_counter() - t1
                mask_s += t1 - t0
                n += 1
                if not ok:
                    rejected += 1
                    break
        compile_ms.sort()
        res["engines"][e] = {"compile_ms_median": round(compile_ms[len(compile_ms) // 2], 2),
                             "mask_ms_per_token": round(1000 * mask_s / n, 4),
                             "advance_ms_per_token": round(1000 * step_s / n, 4),
                             "tokens": n, "documents_refused": rejected}
    Path(out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


def merge(paths: list[str], out: str) -> None:
    """The outputs of runs split with --first, as one: proposals judged together, mask costs
    weighted by tokens, compile times as the median of the runs' medians."""
    runs = sorted((json.loads(Path(p).read_text()) for p in paths), key=lambda r: r.get("first", 1))
    res: dict = {k: runs[0][k] for k in ("model", "temperature", "k")}
    res["contexts"] = sum(r["contexts"] for r in runs)
    res["texts"], res["engines"] = {}, {}
    for e in runs[0]["engines"]:
        texts = [t for r in runs for t in r["texts"][e]]
        rs = [r["engines"][e] for r in runs]
        tokens = sum(x["masked_tokens"] for x in rs)

        def per_token(key, rs=rs, tokens=tokens):
            return round(sum(x[key] * x["masked_tokens"] for x in rs) / tokens, 4)

        def median(key, rs=rs):
            v = sorted(x[key] for x in rs)
            return v[len(v) // 2]

        res["texts"][e] = texts
        res["engines"][e] = {**judge(texts), "tokenizer_setup_s": median("tokenizer_setup_s"),
                             "compile_ms_median": median("compile_ms_median"),
                             "first_mask_ms_median": median("first_mask_ms_median"),
                             "mask_ms_per_token": per_token("mask_ms_per_token"),
                             "apply_ms_per_token": per_token("apply_ms_per_token"), "masked_tokens": tokens,
                             "generate_s": round(sum(x["generate_s"] for x in rs), 1)}
    Path(out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res["engines"], indent=1))


if __name__ == "__main__":
    main()
