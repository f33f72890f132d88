"""The search loop (see ``docs/search.md``).

    profile -> sample (fidelity check) -> target selection -> baseline r0
    -> noise band (placebo arms, once)
    -> rounds: propose K -> lint / repair (<= 3) -> de-duplicate (canonical keys)
               -> run the round as one batch through the cached executor -> evaluate each (one replicate)
               -> race: more replicates for the candidates not separated from the incumbent
               -> journal the round -> group-relative feedback to the agent
    -> stop on a budget -> apply the best strategy to the full data -> evaluate -> report

Its parts live next to it: the configuration (``config``), the data side (``data``), running
candidates (``execution``), the evaluators (``evaluators``), the journal (``journal``), what it
prints (``console``). What the agent may know is built by the privacy boundary (``boundary``)
alone: the loop hands it the search's state and passes on the ``AgentContext`` it returns.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from autodp_dsl import compile_text
from autodp_dsl.atomic import write_bytes_atomic, write_text_atomic
from autodp_dsl.compiler import CompileResult
from autodp_dsl.fixes import fix_text
from autodp_dsl.ops import ROW_ID
from autodp_dsl.plan_keys import stable_hash

from . import boundary
from .agents import (
    Agent,
    AgentContext,
    AgentFailure,
    CandidateRecord,
    Proposal,
    RepairRequest,
    make_agent,
)
from .agents._ir_tools import strategy_key
from .budget import BudgetState, estimate
from .config import SearchConfig
from .console import Console
from .data import (
    TARGET_COLUMN,
    DataSet,
    frame_fingerprint,
    load_data,
    make_profile,
    make_sample,
    make_selector,
    output_fingerprint,
    tidy_text_columns,
    user_columns,
)
from .errors import BackendFailure, NoValidStrategy, SettingsError
from .evaluators import EVAL_COLUMNS, AutodpEvaluator, EvalOutcome, Evaluator
from .execution import CandidateRun, run_strategies
from .journal import Journal, JournalMismatch, record_from_json, record_to_json
from .prompts import catalog_from_registry
from .racing import SCORE_FIELDS, NoiseBand, placebo_rule, race_interval, race_order
from .report import NO_PLACEBO_WIN, NOT_SHOWN, build_report, improvement_shown, write_report

__all__ = ["Search", "SearchResult", "run_search"]


@dataclass
class SearchResult:
    out_dir: Path
    best: CandidateRecord | None
    best_text: str
    records: list[CandidateRecord]
    final: dict[str, Any] | None
    report: dict[str, Any]
    stop_reason: str
    seconds: float


class Search:
    """One search. ``evaluator`` and ``agent`` can be injected (tests, benchmarks)."""

    def __init__(self, config: SearchConfig, evaluator: Evaluator | None = None, agent: Agent | None = None):
        self.cfg = config
        data_name = Path(config.data).stem or "search"
        self.out = Path(config.out_dir or Path("runs") / data_name)
        self.journal = Journal(self.out / "journal")
        self.console = Console(config.quiet)
        self._tmp: Path | None = None
        if config.cache:
            self.cache_dir = Path(config.cache_dir) if config.cache_dir else self.out / ".cache"
        else:  # nothing reused across runs: a scratch folder for this run, removed at the end
            self._tmp = Path(tempfile.mkdtemp(prefix="autodp-nocache-"))
            self.cache_dir = self._tmp
        if config.budget.stop_file is None:
            config.budget.stop_file = str(self.out / "STOP")
        self.evaluator = evaluator or AutodpEvaluator(config.eval_preset, config.eval_overrides,
                                                      cache_dir=self.cache_dir / "eval", scratch=not config.cache,
                                                      verdict_replicates=config.verdict_replicates,
                                                      workers=config.eval_workers)
        kw = {}
        if config.agent in ("offline",) and config.strategies_dir != "auto":
            kw["strategies_dir"] = config.strategies_dir
        self.agent = agent or make_agent(config.agent, seed=config.seed, llm=config.llm, **kw)
        self.state = BudgetState(config.budget)
        self.records: list[CandidateRecord] = []
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        self.round_meta: list[dict[str, Any]] = []
        self.output_fps: dict[str, str] = {}  # fingerprint of a candidate's training data -> its cid
        self.row_sets = boundary.RowSets(config.profile_k)  # scored outputs' rows (the boundary's k-rule)
        self.agent_failure: str | None = None  # set when the agent failed mid-round: the search stops after it
        self.limit_events: list[str] = []  # limits that bit since the last plan was journaled
        # racing and the noise band need an evaluator that replicates (autodp_eval does; see racing.py)
        replicated = bool(getattr(self.evaluator, "replicated", False))
        self.racing = replicated and config.race_replicates > 1
        self.banding = replicated and config.noise_replicates >= 2
        self.band: NoiseBand | None = None
        self.base_reps = 1  # the baseline's replicates asked for so far (a race step past them needs one more)
        self.events_log: list[str] = []  # every limit that bit and fallback taken (for the report)

    # ------------------------------------------------------------------ setup

    def _exec_cache(self) -> Path | None:
        return self.cache_dir / "exec" if self.cfg.cache else None

    def prepare(self) -> None:
        cfg = self.cfg
        t0 = time.perf_counter()
        self.data: DataSet = load_data(cfg.data)
        full = self.data.frame
        self.console.print(f"[bold]autodp search[/bold] {cfg.data}: {full.height} rows"
                           + (f", {self.data.quarantined} quarantined" if self.data.quarantined else "")
                           + (f"; nested columns set aside: {', '.join(self.data.dropped_columns)}" if self.data.dropped_columns else ""))
        # held-out questions: one set for the search, another for the final evaluation only
        from autodp_eval import split_heldout

        n_h = cfg.heldout_n + (cfg.final_heldout_n if cfg.final else 0)
        pool, held = split_heldout(full, n_h, seed=cfg.seed)
        held = held.sample(fraction=1.0, shuffle=True, seed=cfg.seed)
        if cfg.tidy_heldout:
            held = tidy_text_columns(held)
        self.heldout = held.head(cfg.heldout_n)
        self.final_heldout = held.tail(held.height - cfg.heldout_n) if cfg.final else held.head(0)
        self.pool = pool
        self.timings["load"] = time.perf_counter() - t0

        t = time.perf_counter()
        # columns on fewer than k rows (of the rows profiled) are never named to the agent, nor usable
        # by its strategies
        self.hidden_columns = boundary.visible_columns(pool, user_columns(pool), cfg.profile_k)[1]
        self.profile_text, self.profile_json, self.signal_stats = make_profile(pool.drop(self.hidden_columns),
                                                                               k=cfg.profile_k)
        self.timings["profile"] = time.perf_counter() - t
        self.console.print(f"profile: {pool.height} rows, k-anonymity floor {cfg.profile_k} ({self.timings['profile']:.1f} s)")

        t = time.perf_counter()
        if cfg.sampling and cfg.sample_fraction < 1.0:
            search, self.fidelity, self.fidelity_text = make_sample(pool, cfg.sample_fraction, cfg.seed)
        else:
            search, self.fidelity, self.fidelity_text = pool, {"method": "none", "rows": pool.height}, "sampling off: searching on all rows"
        self.timings["sample"] = time.perf_counter() - t
        self.console.print(f"sample: {search.height} of {pool.height} rows\n{self.fidelity_text}")

        t = time.perf_counter()
        # trained on every searchable row, not just the sample: its labels come from cheap signals,
        # and a small sample may hold too few low-quality rows to learn from
        self.selector = make_selector(pool, cfg.seed, cfg.target_selection, cfg.target_judge, memo=cfg.cache)
        search = self.selector.add(search, TARGET_COLUMN)
        self.full_frame = self.selector.add(full, TARGET_COLUMN)
        self.timings["targets"] = time.perf_counter() - t
        m = self.selector.metrics
        if m.get("enabled"):
            shown = {k: v for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            self.console.print("target selection: " + ", ".join(f"{k} {v:.3g}" for k, v in list(shown.items())[:6]))
        else:
            self.console.print(m.get("note", "target selection off"))
        self.search_frame = search
        self.search_fp = stable_hash({"parent": self.data.fingerprint, "derived": frame_fingerprint(search)})
        self.full_fp = stable_hash({"parent": self.data.fingerprint, "derived": frame_fingerprint(self.full_frame)})
        self.columns = {n: t for n, t in user_columns(search).items() if n not in self.hidden_columns}
        if self.hidden_columns:
            self.console.print(f"privacy: {len(self.hidden_columns)} column(s) present on fewer than {cfg.profile_k} rows "
                               "are not shown to the agent")
        self.train_steps = None
        if self.cfg.same_steps and hasattr(self.evaluator, "same_steps"):
            self.train_steps = self.evaluator.same_steps(search.height)
            self.console.print(f"evaluation: every arm trains {self.train_steps} steps (same-steps protocol)")
        self.catalog = catalog_from_registry()
        self._param_catalog = boundary.param_catalog(self.catalog)

    # ------------------------------------------------------------------ context

    def context(self, rnd: int, wave: int = 0, k: int | None = None, current: tuple = ()) -> AgentContext:
        """What the agent may know, built by the privacy boundary (``autodp_search.boundary``)."""
        cfg = self.cfg
        history = (*self.records, *current)
        return boundary.agent_context(
            task=cfg.task, round=rnd, wave=wave, k=k or cfg.k, k_min=min(cfg.k_min, k or cfg.k), k_max=k or cfg.k_max,
            columns=self.columns, profile_text=self.profile_text, catalog=self.catalog,
            signal_stats=self.signal_stats, history=history, near={r.cid: self._near_of(r) for r in history},
            rows=self.search_frame.height, k_floor=cfg.profile_k, seed=cfg.seed, target_column=TARGET_COLUMN,
            rounds_left=max(cfg.budget.max_rounds - rnd + 1, 0), notes=self.notes[-10:])

    def _near_of(self, r: CandidateRecord) -> str | None:
        """The candidate whose score ``r`` was given (outputs within k rows), hidden from the agent."""
        return r.duplicate_of if r.status == "duplicate" and r.rows_in is not None else None

    # ------------------------------------------------------------------ baseline

    def baseline(self) -> None:
        # a candidate that trains on exactly the unprocessed data scores r0: never evaluated
        self.output_fps.setdefault(output_fingerprint(self.search_frame), "r0")
        self.row_sets.add("r0", boundary.row_hashes(self.search_frame, (ROW_ID, *EVAL_COLUMNS)))
        saved = self.journal.setup()
        if saved and saved.get("baseline"):
            self.r0 = EvalOutcome.from_dict(saved["baseline"])
            self.console.print("baseline r0: from the journal")
            if not self.state.rounds_done:  # else the last round's budget counted it
                self._charge(1, self.r0.finetunes)
            return
        self.console.print(f"baseline: fine-tuning on the unprocessed {'sample' if self.cfg.sampling else 'data'} ...")
        o = self.evaluator.evaluate(self.search_frame, self.search_frame, self.heldout)
        if o.error:
            raise BackendFailure(f"the baseline cannot be evaluated: {o.error}")
        self._charge(1, o.finetunes)
        self.r0 = o
        self.console.print(f"baseline r0 = 0.5 by definition (win rate against itself: {o.win_rate}); held-out loss "
                           f"{o.baseline_loss if o.baseline_loss is not None else 'n/a'}; {o.seconds:.1f} s")
        self.journal.write_setup(self.setup_json())

    @property
    def band_cost(self) -> int:
        """The noise band's fine-tunes: a placebo arm per drop fraction and replicate, and the
        baseline's replicates beyond its first."""
        cfg = self.cfg
        return (len(cfg.noise_fractions) + 1) * cfg.noise_replicates - 1 if self.banding else 0

    def _charge(self, nominal: int, trained: int) -> None:
        """Budget the fine-tunes a decision asked for (``nominal``: counted whether the memo holds
        the arms or not, so a resumed search or a warm memo decides as a cold run does) and count
        the arms trained now (``trained``, reported beside it)."""
        self.state.finetunes += nominal
        self.state.trained += trained

    def _check_settings(self) -> None:
        """Refuse, before anything runs, a fine-tune budget the baseline and the noise band spend
        before one round's first replicates (the search would stop before round 1 with exit 3)."""
        cap, cfg = self.cfg.budget.max_finetunes, self.cfg
        need = 1 + self.band_cost + cfg.k
        if cap is not None and self.band_cost and cap < need:
            raise SettingsError(
                f"--max-finetunes {cap} is spent before round 1: the baseline (1) and the noise band "
                f"({self.band_cost}: {len(cfg.noise_fractions)} drop fractions x {cfg.noise_replicates} replicates and "
                f"{cfg.noise_replicates - 1} more of the baseline) take {1 + self.band_cost}; one round of {cfg.k} "
                f"candidates needs --max-finetunes {need} or more (or --noise-replicates 0: no band, no placebo rule)")

    def noise_band(self, saved: dict[str, Any] | None) -> None:
        """Measure the noise band once (placebo arms at the configured drop fractions, paired with the
        baseline's replicates) and journal it with the setup; a resumed search reads it back."""
        if not self.banding:
            return
        if saved and saved.get("noise_band"):
            self.band = NoiseBand.from_dict(saved["noise_band"])
            self.base_reps = max(self.base_reps, self.cfg.noise_replicates)
            if not self.state.rounds_done:  # else the last round's budget counted it
                self._charge(self.band_cost, self.band.finetunes)
            return
        cfg = self.cfg
        self.console.print(f"noise band: placebo arms dropping {', '.join(f'{f:.0%}' for f in cfg.noise_fractions)} of "
                           f"the rows at random, {cfg.noise_replicates} replicates each ...")
        try:
            d = self.evaluator.noise_band(self.search_frame, self.heldout, tuple(cfg.noise_fractions),
                                          cfg.noise_replicates, seed=cfg.seed)
        except Exception as e:  # like the baseline: without the band no score can be read, so stop cleanly
            raise BackendFailure(f"the noise band cannot be measured: {type(e).__name__}: {e}") from e
        if missing := [p["fraction"] for p in d["points"] if p["estimate"] is None]:
            raise BackendFailure(f"the noise band cannot be measured: no question was judged in every replicate "
                                 f"at drop fraction(s) {', '.join(f'{f:.0%}' for f in missing)} (judge failures)")
        self._charge(self.band_cost, d["finetunes"])
        self.base_reps = max(self.base_reps, cfg.noise_replicates)
        self.band = NoiseBand.from_dict(d)
        for p in self.band.points:
            self.console.print(f"  placebo, {p.fraction:.0%} of the rows dropped at random: win rate {p.estimate:.3f} "
                               f"[{p.low:.3f}, {p.high:.3f}] (per replicate {', '.join(f'{x:.2f}' for x in p.per_replicate)})")
        hw = self.band.training_half_width(1)
        self.console.print(f"  training noise: sd {self.band.sd:.3f} per replicate (df {self.band.df}); one replicate's "
                           f"score is uncertain by +-{hw:.3f}, {cfg.race_replicates} replicates' by "
                           f"+-{self.band.training_half_width(cfg.race_replicates):.3f}; {self.band_cost} fine-tunes, "
                           f"{d['seconds']:.0f} s")
        self.journal.write_setup(self.setup_json())

    def setup_json(self) -> dict[str, Any]:
        return {
            "profile_text": self.profile_text,
            "profile": self.profile_json,
            "fidelity": self.fidelity,
            "fidelity_text": self.fidelity_text,
            "targets": self.selector.metrics,
            "baseline": self.r0.to_dict(),
            "noise_band": self.band.to_dict() if self.band is not None else None,
            "rows": {"full": self.data.frame.height, "pool": self.pool.height, "search": self.search_frame.height,
                     "heldout": self.heldout.height, "final_heldout": self.final_heldout.height},
            "timings": self.timings,
        }

    # ------------------------------------------------------------------ a round

    def _autofix(self, proposal: Proposal, into: Proposal | None = None) -> Proposal:
        """The proposal with its diagnostics' machine-applicable fixes applied (a misspelt name with
        one candidate): no agent call is spent on those. The number of fixes is added to
        ``meta["autofixes"]`` of ``into`` (the proposal a repair answers), else of the result, whose
        ``meta["proposed"]`` keeps the agent's own text."""
        text, n = fix_text(proposal.dp_text, columns=self.columns)
        if not n:
            return proposal
        fixed = replace(proposal, dp_text=text, meta={"proposed": proposal.dp_text, **proposal.meta})
        counter = into if into is not None else fixed
        counter.meta["autofixes"] = counter.meta.get("autofixes", 0) + n
        return fixed

    def _lint(self, text: str):
        return compile_text(text, columns=self.columns, level="canonical")

    def _lint_proposal(self, text: str):
        """The agent path's lint: the language's, plus the boundary's rules (steps, string literals,
        text-matching parameters). People's .dp files go through ``_lint`` only."""
        res = self._lint(text)
        if not res.ok:
            return res
        extra = boundary.agent_diagnostics(res.strategy, self._param_catalog, self.cfg.max_steps)
        if not extra:
            return res
        if any(d.code == "agent-too-many-steps" for d in extra):
            self.limit_events.append(f"a proposal with more than {self.cfg.max_steps} steps was rejected (--max-steps)")
        return CompileResult(None, [*res.diagnostics, *extra], text, res.checked)

    def plan_round(self, rnd: int, wave: int = 0, k: int | None = None, current: tuple = (),
                   first: int = 1) -> dict[str, Any]:
        """Proposals -> lint/repair -> de-duplicate. Journaled before any evaluation.

        ``wave`` > 0 refills a round: ``k`` more proposals, numbered from ``first``, with the
        round's candidates so far (``current``) in the agent's history."""
        saved = self.journal.plan(rnd, wave)
        if saved is not None:
            self.state.agent_calls += saved.get("agent_calls", 0)
            self.state.repairs += saved.get("repairs", 0)
            self.events_log.extend(saved.get("events", []))
            return saved
        ctx = self.context(rnd, wave, k, current)
        calls = repairs = 0
        if self._agent_stop() is not None:  # the STOP file or the time budget: no call in flight
            return {"round": rnd, "wave": wave, "candidates": [], "agent_calls": 0, "repairs": 0,
                    "agent": self.agent.name, "skipped": self._agent_stop()}
        try:
            proposals: list[Proposal] = list(self.agent.propose(ctx))
        except Exception as e:  # noqa: BLE001 - an agent failure ends the search cleanly
            self.state.agent_calls += 1
            if wave == 0:
                raise AgentFailure(_agent_error("propose", e), getattr(e, "kind", "internal")) from e
            self.agent_failure = _agent_error("propose a refill", e)  # the round keeps what it has
            return {"round": rnd, "wave": wave, "candidates": [], "agent_calls": 1, "repairs": 0,
                    "agent": self.agent.name, "agent_failure": self.agent_failure}
        calls += 1
        if len(proposals) > ctx.k_max:
            self.limit_events.append(f"round {rnd}: the agent proposed {len(proposals)} strategies; "
                                     f"the first {ctx.k_max} (--k-max) were kept")
        proposals = proposals[: ctx.k_max]
        proposals = [self._autofix(p) for p in proposals]  # before any repair is asked for
        known: dict[str, str] = {}
        for r in (*self.records, *current):
            if r.key and r.status in ("ok", "failed", "duplicate"):
                known.setdefault(r.key, r.cid)
        cands: list[dict[str, Any]] = []
        failure: str | None = None
        for i, p in enumerate(proposals, first):
            cid = f"r{rnd}c{i}"
            text = p.dp_text
            res = self._lint_proposal(text)
            attempts = [{"dp_text": text, "diagnostics": _diag_list(res)}]
            attempt = 0
            while not res.ok and attempt < self.cfg.budget.max_repairs and failure is None:
                if self.cfg.budget.max_agent_calls is not None and self.state.agent_calls + calls >= self.cfg.budget.max_agent_calls:
                    break
                if self._agent_stop() is not None:
                    break
                attempt += 1
                diags = tuple(d.to_dict() for d in res.diagnostics)
                try:
                    fixed = self.agent.repair(ctx, RepairRequest(_clip(text, self.cfg.max_repair_chars), diags, attempt))
                except Exception as e:  # noqa: BLE001 - the round keeps its valid proposals; the search stops after it
                    calls += 1
                    failure = _agent_error(f"repair {cid}", e)
                    break
                calls += 1
                repairs += 1
                if fixed is None:
                    break
                fixed = self._autofix(fixed, into=p)
                text = fixed.dp_text
                res = self._lint_proposal(text)
                attempts.append({"dp_text": text, "diagnostics": _diag_list(res)})
            entry: dict[str, Any] = {"cid": cid, "dp_text": text, "origin": p.origin, "rationale": p.rationale[:300],
                                     "repairs": attempt, "proposal": p.dp_text, "attempts": attempts}
            if not res.ok:
                errs = [f"{d.code} (line {d.line}): {d.message}" for d in res.diagnostics if str(d.severity).endswith("error")]
                entry.update(status="invalid", key="", errors=errs[:8] or ["does not compile"])
            else:
                key = strategy_key(res.strategy)
                entry["key"] = key
                if key in known:
                    entry.update(status="duplicate", duplicate_of=known[key])
                else:
                    known[key] = cid
                    entry["status"] = "pending"
            if p.meta.get("autofixes"):  # and what the agent wrote before them
                entry.update(autofixes=p.meta["autofixes"], proposed=p.meta.get("proposed", p.dp_text))
            cands.append(entry)
        plan = {"round": rnd, "wave": wave, "candidates": cands, "agent_calls": calls, "repairs": repairs,
                "agent": self.agent.name}
        events = self._agent_events()
        if events:
            plan["events"] = events
        if failure is not None:
            plan["agent_failure"] = failure
            self.agent_failure = failure
        self.state.agent_calls += calls
        self.state.repairs += repairs
        self.journal.write_plan(rnd, plan, wave)
        return plan

    def _agent_stop(self) -> str | None:
        """A hard limit that forbids another agent call now (STOP file, wall time)."""
        return self.state.candidate_stop()

    def _agent_events(self) -> list[str]:
        """Limits that bit and fallbacks the agent took since the last call, moved to the search."""
        ev = list(self.limit_events)
        self.limit_events.clear()
        agent_ev = getattr(self.agent, "events", None)
        if agent_ev:
            ev += list(agent_ev)
            agent_ev.clear()
        self.events_log.extend(ev)
        return ev

    def run_round(self, rnd: int) -> tuple[list[CandidateRecord], str | None]:
        """Plan, run and evaluate a round. A slot whose candidate produced exactly the data of an
        earlier candidate taught nothing new, so the agent is asked for that many more proposals,
        at most ``refills`` times per round (each an agent call, journaled like the first plan)."""
        t_round = time.perf_counter()
        records: dict[str, CandidateRecord] = {}
        cands: list[dict[str, Any]] = []
        plan = self.plan_round(rnd)
        if plan.get("skipped"):  # a hard limit before the agent was asked: nothing of this round is done
            return [], plan["skipped"]
        stop = None
        for wave in range(self.cfg.refills + 1):
            cands += plan["candidates"]
            stop, repeated = self._run_wave(rnd, plan["candidates"], records)
            if stop or not repeated or wave == self.cfg.refills or self.agent_failure:
                break
            limit = self.cfg.budget.max_agent_calls
            if limit is not None and self.state.agent_calls >= limit:
                break
            current = tuple(records[c["cid"]] for c in cands if c["cid"] in records)
            plan = self.plan_round(rnd, wave + 1, k=repeated, current=current, first=len(cands) + 1)
            if not plan["candidates"]:
                break
        if stop is None:
            stop = self.race(rnd, records)
        ordered = [records[c["cid"]] for c in cands if c["cid"] in records]
        if stop is None:
            for c in cands:
                if c["status"] == "duplicate":
                    self.notes.append(f"{c['cid']} equals {c['duplicate_of']} after canonicalisation: evaluated once")
            self.journal.write_round(rnd, {"round": rnd, "records": [record_to_json(r) for r in ordered],
                                           "notes": self.notes[-10:], "output_fps": self.output_fps, "seconds": time.perf_counter() - t_round,
                                           "wall_s": self.state.wall_s, "budget": self.state.to_dict()})
        return ordered, stop

    def _run_wave(self, rnd: int, cands: list[dict[str, Any]], records: dict[str, CandidateRecord]) -> tuple[str | None, int]:
        """Run one plan's candidates as a batch and evaluate them into ``records``. Returns the stop
        reason (or None) and how many candidates repeated an earlier candidate's output."""
        todo = []
        repeated = 0
        for c in cands:
            if c["status"] == "invalid":
                records[c["cid"]] = CandidateRecord(rnd, c["cid"], c["dp_text"], "invalid", errors=tuple(c.get("errors", ())),
                                                    origin=c.get("origin", ""))
            elif c["status"] == "duplicate":
                records[c["cid"]] = CandidateRecord(rnd, c["cid"], c["dp_text"], "duplicate", key=c["key"],
                                                    duplicate_of=c["duplicate_of"], origin=c.get("origin", ""))
            else:
                done = self.journal.candidate(c["cid"])
                if done is not None:
                    records[c["cid"]] = record_from_json(done["record"])
                    self._charge(done.get("finetunes", 0), done.get("trained", 0))
                    self.state.evaluations += int(done.get("evaluated", True))
                    if done.get("output_fp") and records[c["cid"]].status == "ok":
                        self.output_fps.setdefault(done["output_fp"], c["cid"])
                    if done.get("row_hashes") is not None and records[c["cid"]].status == "ok":
                        self.row_sets.add(c["cid"], boundary.RowSets.decode(done["row_hashes"]))
                    if records[c["cid"]].duplicate_of:
                        repeated += 1
                else:
                    todo.append(c)
        if not todo:
            return None, repeated
        stop = None
        strategies = [self._lint(c["dp_text"]).strategy for c in todo]
        t = time.perf_counter()
        runs = run_strategies(strategies, self.search_frame, self.search_fp, self._exec_cache(), self.cfg.cache)
        exec_s = time.perf_counter() - t
        self.console.print(f"round {rnd}: ran {len(todo)} candidates as one batch ({exec_s:.2f} s)")
        ahead = self._train_ahead(rnd, todo, runs)
        for c, run in zip(todo, runs, strict=True):
            stop = self.state.candidate_stop()
            if stop:  # arms trained ahead for the candidates left stay in the memo and in round-NNNN.ahead.json
                self.state.trained += sum(ahead.get(x["cid"], 0) for x in todo if x["cid"] not in records)
                break
            ok_run = run.frame is not None and not run.error
            fp = output_fingerprint(run.frame) if ok_run else ""
            hashes = boundary.row_hashes(run.frame, (ROW_ID, *EVAL_COLUMNS)) if ok_run else None
            # The boundary's k-rule: an output within k rows of a scored one (r0 included) gets that
            # one's score and is not trained on: no score moves with a single row, and nothing is
            # trained twice on the same data (so the k-rule holds with --no-cache too)
            near = self.row_sets.nearest(hashes) if hashes is not None else None
            if near is not None:
                rec = self._scored_like(rnd, c, run, near, records)
                records[c["cid"]] = rec
                repeated += 1
                self.journal.write_candidate(c["cid"], {"record": record_to_json(rec), "finetunes": 0,
                                                        "evaluated": False, "output_fp": fp})
                self.console.print(f"  {c['cid']}: within {self.cfg.profile_k} rows of {near}'s data: scored as {near}")
                continue
            rec, nominal, trained = self._evaluate(rnd, c, run)
            trained += ahead.get(c["cid"], 0)  # its arm, trained beside the others before
            self._charge(nominal, trained)
            if fp and rec.status == "ok":
                self.output_fps[fp] = c["cid"]
            entry = {"record": record_to_json(rec), "finetunes": nominal, "trained": trained, "output_fp": fp}
            if hashes is not None and rec.status == "ok":
                self.row_sets.add(c["cid"], hashes)
                entry["row_hashes"] = boundary.RowSets.encode(hashes)
            records[c["cid"]] = rec
            self.journal.write_candidate(c["cid"], entry)
            self._print_candidate(rec)
        return stop, repeated

    def _train_ahead(self, rnd: int, todo: list[dict[str, Any]], runs: list[CandidateRun]) -> dict[str, int]:
        """Have the evaluator train the arms of the candidates the wave will evaluate, ``--eval-workers``
        at a time (``AutodpEvaluator.train_ahead``), instead of one after another: which ones is
        decided as the loop below decides (ran, kept enough rows, not within k rows of a scored output,
        within the fine-tune budget). Returns the arms trained per candidate id, this session's and
        those an earlier session trained ahead but stopped before evaluating (journaled in
        ``round-NNNN.ahead.json`` as soon as they are trained; the arms are in the evaluator's memo,
        so their evaluation after ``--resume`` trains nothing and counts them here)."""
        saved = self.journal.ahead(rnd)
        trained = self._train_ahead_now(todo, runs)
        if any(trained.values()):
            saved.update({cid: n for cid, n in trained.items() if n})
            self.journal.write_ahead(rnd, saved)
        return saved

    def _train_ahead_now(self, todo: list[dict[str, Any]], runs: list[CandidateRun]) -> dict[str, int]:
        fn = getattr(self.evaluator, "train_ahead", None)
        if fn is None:
            return {}
        sets = boundary.RowSets(self.cfg.profile_k, dict(self.row_sets.sets))
        chosen: list[tuple[str, pl.DataFrame]] = []
        for c, run in zip(todo, runs, strict=True):
            if run.frame is None or run.error or run.rows_out < self.cfg.min_rows:
                continue
            hashes = boundary.row_hashes(run.frame, (ROW_ID, *EVAL_COLUMNS))
            if sets.nearest(hashes) is None:
                sets.add(c["cid"], hashes)
                chosen.append((c["cid"], run.frame))
        cap = self.cfg.budget.max_finetunes
        if cap is not None:
            chosen = chosen[: max(cap - self.state.finetunes, 0)]
        if len(chosen) < 2:
            return {}
        try:
            trained = fn([f for _, f in chosen], self.search_frame, self.heldout)
        except Exception as e:  # training ahead only saves time: each candidate's own evaluation below
            # trains what is missing and reports its failure as that candidate's, as with one worker
            self.console.print(f"training ahead stopped ({type(e).__name__}: {e}); the candidates train one by one")
            return {}
        return dict(zip((cid for cid, _ in chosen), trained, strict=True))

    def _scored_like(self, rnd: int, c: dict[str, Any], run: CandidateRun, near: str,
                     current: dict[str, CandidateRecord]) -> CandidateRecord:
        """A candidate whose output is within k rows of ``near``'s (a candidate or r0), with its score."""
        if near == "r0":
            o = self.r0
            score = self.score_fields(replace(o, win_rate=0.5 if o.win_rate is None else o.win_rate),
                                      run.rows_in, run.rows_out)
        else:
            src = next(r for r in (*self.records, *current.values()) if r.cid == near)
            score = {f: getattr(src, f) for f in SCORE_FIELDS}
        return CandidateRecord(rnd, c["cid"], c["dp_text"], "duplicate", key=c["key"], duplicate_of=near,
                               rows_in=run.rows_in, rows_out=run.rows_out, steps=tuple(run.steps),
                               origin=c.get("origin", ""), **score)

    def _evaluate(self, rnd: int, c: dict[str, Any], run: CandidateRun) -> tuple[CandidateRecord, int, int]:
        """The candidate's record, the fine-tunes it asked for (the budget's count) and those trained now."""
        base = dict(round=rnd, cid=c["cid"], dp_text=c["dp_text"], key=c["key"], rows_in=run.rows_in,
                    rows_out=run.rows_out, steps=tuple(run.steps), origin=c.get("origin", ""))
        if run.error or run.frame is None:
            code = (run.error or "error").split(":", 1)[0][:40]
            return CandidateRecord(status="failed", feedback=f"execution failed ({code})", errors=(code,), **base), 0, 0
        if run.rows_out < self.cfg.min_rows:
            return CandidateRecord(status="failed", feedback=f"kept {run.rows_out} rows: too few to fine-tune on", **base), 0, 0
        o = self.evaluator.evaluate(run.frame, self.search_frame, self.heldout)
        self.state.evaluations += 1
        # one fine-tune asked for: the candidate's first replicate (the baseline's is r0's)
        if o.error or o.win_rate is None:
            return CandidateRecord(status="failed", feedback=o.feedback, **base), 1, o.finetunes
        return CandidateRecord(status="ok", **self.score_fields(o, run.rows_in, run.rows_out), **base), 1, o.finetunes

    def score_fields(self, o: EvalOutcome, rows_in: int | None, rows_out: int | None,
                     question_halfwidth: float | None = None) -> dict[str, Any]:
        """A scored outcome as the record's score: the mean over its replicates, the interval the
        search decides on (with the noise band's training term) and the placebo rule at the
        candidate's coarsened size (the agent is told it: no exact count goes into it).
        ``question_halfwidth``: from the candidate's first replicate (None: this is it)."""
        if question_halfwidth is None and o.ci_low is not None and o.ci_high is not None:
            question_halfwidth = (o.ci_high - o.ci_low) / 2
        lo, hi = race_interval(o.win_rate, o.ci_low, o.ci_high, o.replicates, self.band, question_halfwidth)
        frac = boundary.coarse_drop_fraction(rows_in, rows_out, self.cfg.profile_k)
        return dict(delta=round(o.win_rate - 0.5, 6), win_rate=o.win_rate, ci_low=lo, ci_high=hi, feedback=o.feedback,
                    replicates=o.replicates, question_halfwidth=question_halfwidth,
                    **placebo_rule(o.win_rate, lo, hi, self.band, frac))

    def _print_candidate(self, r: CandidateRecord) -> None:
        if r.status == "ok":
            pb = "" if r.placebo is None else (f"; placebo of its size {r.placebo:.2f}: "
                                               + {True: "beaten", False: "better", None: "not separated"}[r.beats_placebo])
            # the interval is the win rate's: printed beside the win rate, not beside score - r0 (= win rate - 0.5)
            self.console.print(f"  {r.cid}: win rate {r.win_rate:.3f} [{r.ci_low:.2f}, {r.ci_high:.2f}] (score - r0 = "
                               f"{r.delta:+.3f}) over {r.replicates} replicate(s){pb}  {r.rows_out}/{r.rows_in} rows  "
                               f"({r.origin})")
        else:
            self.console.print(f"  {r.cid}: {r.status} {r.feedback}")

    # ------------------------------------------------------------------ racing

    def race(self, rnd: int, current: dict[str, CandidateRecord]) -> str | None:
        """After a round's first replicates: one more replicate at a time to the incumbent and the
        candidates whose interval overlaps it (``racing.race_order``; earlier rounds' included), until
        they separate, reach ``race_replicates``, or the round's ``race_finetunes`` are spent. Each step
        is journaled (``round-NNNN.race.json``); a resumed race replays them, then goes on. Returns a
        hard stop (STOP file, fine-tunes, time) or None."""
        cfg = self.cfg
        if not self.racing:
            return None
        steps = self.journal.race(rnd)
        for st in steps:  # done before a kill: replayed, not trained again
            self.apply_race(st, current)
            self._charge(st["finetunes"], st.get("trained", 0))
            self.state.evaluations += 1
        spent = sum(st["finetunes"] for st in steps)
        while True:
            if stop := self.state.candidate_stop():
                return stop
            pool = [*self.records, *current.values()]
            order = race_order(pool, cfg.race_replicates)
            if not order:
                break
            rec = next(r for r in pool if r.cid == order[0])
            # the candidate's next arm, and the baseline's when no decision has asked for that replicate
            # yet: counted so whether the memo holds them or not (a warm memo races as a cold one)
            cost = 1 + (rec.replicates + 1 > self.base_reps)
            if spent + cost > cfg.race_finetunes or not self.state.affords(cost):
                break
            run = run_strategies([self._lint(rec.dp_text).strategy], self.search_frame, self.search_fp,
                                 self._exec_cache(), cfg.cache)[0]
            o = None if run.error or run.frame is None else \
                self.evaluator.evaluate(run.frame, self.search_frame, self.heldout, replicates=rec.replicates + 1)
            if o is None or o.error or o.win_rate is None:  # it ran and scored before: a back-end problem
                self.notes.append(f"racing stopped: {rec.cid} could not be given another replicate")
                break
            step = {"cid": rec.cid, "finetunes": cost, "trained": o.finetunes,
                    "score": self.score_fields(o, rec.rows_in, rec.rows_out, rec.question_halfwidth)}
            steps.append(step)
            self.journal.write_race(rnd, steps)
            self.apply_race(step, current)
            spent += cost
            self._charge(cost, o.finetunes)
            self.state.evaluations += 1
            self._print_candidate(next(r for r in (*self.records, *current.values()) if r.cid == rec.cid))
        return None

    def apply_race(self, step: dict[str, Any], current: dict[str, CandidateRecord]) -> None:
        """A race step's new score for its candidate, and for the candidates scored like it (outputs
        within k rows: they show the same score, as when they were scored)."""
        cid, score = step["cid"], step["score"]
        self.base_reps = max(self.base_reps, score["replicates"])
        for i, r in enumerate(self.records):
            if r.cid == cid or (r.status == "duplicate" and r.duplicate_of == cid and r.rows_in is not None):
                self.records[i] = replace(r, **score)
        for k, r in current.items():
            if r.cid == cid or (r.status == "duplicate" and r.duplicate_of == cid and r.rows_in is not None):
                current[k] = replace(r, **score)

    # ------------------------------------------------------------------ the whole search

    def best(self) -> CandidateRecord | None:
        ok = [r for r in self.records if r.status == "ok" and r.delta is not None]
        if not ok:
            return None
        return sorted(ok, key=lambda r: (-r.delta, r.round, r.cid))[0]

    def run(self) -> SearchResult:
        t_start = time.perf_counter()
        try:
            self._check_settings()
            resuming = self._start_journal()
            self._preflight()
            self.prepare()
            done_rounds = self._resume(resuming)
            self.baseline()
            self._estimate()
            self.noise_band(self.journal.setup())
            stop_reason, failure = self._rounds(len(done_rounds) + 1)
            return self._conclude(stop_reason, failure, t_start)
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)

    # ------------------------------------------------------------------ the parts of a run

    def _start_journal(self) -> bool:
        """Start the journal (or check it for ``--resume``); True when earlier work is resumed."""
        cfg = self.cfg
        resuming = self.journal.start({"identity": cfg.identity(), "config": cfg.to_json(),
                                       "agent": getattr(self.agent, "name", cfg.agent),
                                       "evaluator": self.evaluator.identity()}, cfg.resume)
        if not resuming:  # a report of an earlier run would sit next to this run's journal
            for name in ("report.json", "report.html"):
                (self.out / name).unlink(missing_ok=True)
        return resuming

    def _resume(self, resuming: bool) -> list[dict[str, Any]]:
        """Check the data against the journal's and take over the rounds earlier sessions finished:
        their records, notes, scored outputs (for the boundary's k-rule) and budget counters."""
        meta = self.journal.meta() or {}
        data_id = {"data": self.data.fingerprint, "evaluator": self.evaluator.identity()}
        if resuming and meta.get("data_identity") not in (None, data_id):
            raise JournalMismatch("cannot resume: the data or the evaluator differ from the journal's; "
                                  "start a new search with --force or another --out")
        if not resuming or meta.get("data_identity") is None:
            self.journal.write_meta({**meta, "data_identity": data_id})
        done_rounds = self.journal.rounds() if resuming else []
        for rd in done_rounds:
            self.records.extend(record_from_json(x) for x in rd["records"])
            for st in self.journal.race(rd["round"]):  # its race may have re-scored earlier rounds' candidates
                self.apply_race(st, {})
            for x in rd["records"]:  # the scored outputs' rows, for the boundary's k-rule
                done = self.journal.candidate(x["cid"]) if x["status"] == "ok" else None
                if done and done.get("row_hashes") is not None:
                    self.row_sets.add(x["cid"], boundary.RowSets.decode(done["row_hashes"]))
            self.notes = list(rd.get("notes", []))
            self.output_fps = dict(rd.get("output_fps", {}))
            self.round_meta.append({"round": rd["round"], "seconds": rd.get("seconds")})
            b = rd.get("budget", {})
            self.state.agent_calls = b.get("agent_calls", self.state.agent_calls)
            self.state.repairs = b.get("repairs", self.state.repairs)
            self.state.finetunes = b.get("finetunes", self.state.finetunes)
            self.state.trained = b.get("trained", self.state.trained)
            self.state.evaluations = b.get("evaluations", self.state.evaluations)
            self.state.wall_before_s = rd.get("wall_s", 0.0)
            best = max((r.delta for r in self.records if r.status == "ok" and r.delta is not None), default=None)
            self.state.note_round(best)
        if done_rounds:
            self.console.print(f"resuming after round {len(done_rounds)} ({len(self.records)} candidates in the journal)")
        return done_rounds

    def _estimate(self) -> None:
        """The pre-flight estimate of the whole search, from the baseline's measured evaluation time."""
        cfg = self.cfg
        per_eval = max(self.r0.seconds, 0.1)
        band_arms = self.band_cost
        # an LLM agent is asked for between --k-min and --k-max proposals (the suggestion is -k): at most k_max
        per_round = cfg.k_max if cfg.agent in ("llm", "automl") else cfg.k
        self.estimate = estimate(cfg.budget, per_round, self.search_frame.height, self.full_frame.height, per_eval, cfg.final,
                                 basis=f"{per_eval:.1f} s per fine-tune measured on the baseline",
                                 same_steps=self.train_steps is not None,
                                 race_finetunes=cfg.race_finetunes if self.racing else 0,
                                 band_arms=band_arms,
                                 verdict_replicates=cfg.verdict_replicates, workers=cfg.eval_workers)
        self.console.print(f"[cyan]{self.estimate.text()}[/cyan]")

    def _rounds(self, rnd: int) -> tuple[str, str | None]:
        """Rounds from ``rnd`` on until a budget, the STOP file or a failure ends the search.
        Returns the stop reason and the agent's failure (None when the search ended normally)."""
        cfg = self.cfg
        if cfg.budget.max_wall_s is not None and hasattr(self.agent, "set_deadline"):
            # a hanging model call must not outlive the time budget
            self.agent.set_deadline(time.monotonic() + cfg.budget.max_wall_s - self.state.wall_s)
        stop_reason = ""
        failure: str | None = None
        while True:
            reason = self.state.stop_reason()
            if reason:
                stop_reason = reason
                break
            self.console.print(f"[bold]round {rnd}[/bold] (agent: {self.agent.name})")
            try:
                recs, stop = self.run_round(rnd)
            except AgentFailure as e:
                # the time budget ran out while the agent was asked: a budget stop, not a failure
                failure = None if self.state.candidate_stop() else str(e)
                stop_reason = self.state.candidate_stop() or str(e)
                break
            self.records.extend(recs)
            if stop:
                stop_reason = stop
                break
            best = max((r.delta for r in recs if r.status == "ok" and r.delta is not None), default=None)
            self.state.note_round(best)
            self.round_meta.append({"round": rnd})
            self._round_table(rnd)
            rnd += 1
            if self.agent_failure:
                failure = stop_reason = self.agent_failure
                break
        self._agent_events()
        self.console.print(f"search stopped: {stop_reason}")
        return stop_reason, failure

    def _conclude(self, stop_reason: str, failure: str | None, t_start: float) -> SearchResult:
        """The final evaluation of the best strategy, the outputs and the report."""
        cfg = self.cfg
        best = self.best()
        # no final evaluation after a failure (--resume continues the search, then evaluates),
        # nor without a strategy (the unprocessed data against itself teaches nothing)
        if self.band is not None and failure is None:  # the search's own screen, before the verdict
            ok = [r for r in self.records if r.status == "ok" and r.delta is not None]
            wins = [r.cid for r in ok if r.improvement]
            self.console.print(f"in the search, {len(wins)} of {len(ok)} candidates beat both the unprocessed data and "
                               f"the placebo of their size: {', '.join(wins)}" if wins else
                               f"[yellow]in the search, {NO_PLACEBO_WIN} ({len(ok)} compared)[/yellow]")
        final = self.finish(best) if cfg.final and best is not None and failure is None else None
        if not cfg.final and best is not None and failure is None:
            self._write_outputs(best.dp_text, None)  # --no-final: the answer without the full-data run
        best = getattr(self, "final_best", best)
        report = build_report(self, best, final, stop_reason, time.perf_counter() - t_start)
        write_report(self.out, report)
        self.console.print(f"wrote {self.out / 'report.json'} and {self.out / 'report.html'}")
        if failure is not None:
            raise BackendFailure(f"{failure}; the journal keeps the {len(self.round_meta)} round(s) done "
                                 f"(--resume continues); report: {self.out / 'report.html'}")
        return SearchResult(self.out, best, best.dp_text if best else "", self.records, final, report, stop_reason,
                            time.perf_counter() - t_start)

    def _preflight(self) -> None:
        """One tiny request to the agent's model before anything is spent (the baseline fine-tune
        above all): an endpoint that is down or a model it does not serve is found in seconds."""
        check = getattr(self.agent, "preflight", None)
        if check is None or not self.cfg.preflight:
            return
        try:
            where = check()
        except Exception as e:  # noqa: BLE001 - any failure of the agent's model is the back-end's
            raise BackendFailure(f"the agent's model is not usable: {e}") from e
        self.console.print(f"agent model: {where} answers")

    def _round_table(self, rnd: int) -> None:
        recs = sorted([r for r in self.records if r.status == "ok"], key=lambda r: r.delta)[-8:]
        rows = [[r.cid, f"{r.delta:+.3f}", f"{r.win_rate:.3f} [{r.ci_low:.2f}, {r.ci_high:.2f}]", str(r.replicates),
                 f"{r.rows_out}/{r.rows_in}", r.origin] for r in recs]
        self.console.table(f"after round {rnd}: candidates by score - r0 (best last)",
                           ["candidate", "score - r0", "win rate [CI]", "replicates", "rows kept", "origin"], rows)

    # ------------------------------------------------------------------ final

    def finish(self, best: CandidateRecord | None) -> dict[str, Any]:
        saved = self.journal.final()
        text = best.dp_text if best else "dp: 1\nname: unprocessed\ndescription: no candidate was scored\nsteps: []\n"
        key = best.key if best else ""
        if saved is not None and saved.get("key") == key:
            self.console.print("final evaluation: from the journal")
            self._write_outputs(text, None)
            return saved
        # the best candidate that runs on the full data (a failure is reported, the next best tried)
        ranked = [best] + [r for r in sorted((r for r in self.records if r.status == "ok" and r.delta is not None),
                                             key=lambda r: (-r.delta, r.round, r.cid)) if best is None or r.cid != best.cid]
        failed_on_full: list[dict[str, str]] = []
        t = time.perf_counter()
        for cand in ranked:
            text = cand.dp_text if cand else text
            run = run_strategies([self._lint(text).strategy], self.full_frame, self.full_fp, self._exec_cache(),
                                  self.cfg.cache)[0]
            if not (run.error or run.frame is None):
                best = cand
                break
            failed_on_full.append({"cid": cand.cid if cand else "", "error": run.error or "no output"})
            self.console.print(f"[yellow]{cand.cid if cand else 'strategy'} failed on the full data: {run.error}; "
                               "trying the next best[/yellow]")
        else:
            raise NoValidStrategy(f"no candidate runs on the full data: {failed_on_full}")
        key = best.key if best else ""
        self.final_best = best
        exec_s = time.perf_counter() - t
        self._write_outputs(text, run.frame)
        self.console.print(f"final: best strategy {best.cid if best else '(none)'} kept {run.rows_out} of {run.rows_in} rows "
                           f"of the full data ({exec_s:.1f} s); evaluating against the unprocessed data ...")
        o = self.evaluator.evaluate(run.frame, self.full_frame, self.final_heldout, verdict=True)
        # the candidate, the unprocessed data and a placebo per replicate (an evaluator without a
        # replicated verdict: the candidate's one arm)
        vr = getattr(self.evaluator, "verdict_replicates", None)
        self._charge(3 * vr if vr else 1, o.finetunes)
        final = {
            "cid": best.cid if best else None,
            "key": key,
            "rows_in": run.rows_in,
            "rows_out": run.rows_out,
            "steps": [asdict(s) for s in run.steps],
            "execution_seconds": exec_s,
            "failed_on_full": failed_on_full,
            "eval": o.to_dict(),
            "heldout": self.final_heldout.height,
        }
        if o.win_rate is not None:
            self.console.print(f"[bold]final win rate {o.win_rate:.3f} (95% CI {o.ci_low:.3f}-{o.ci_high:.3f})[/bold] "
                               f"against the unprocessed data on {o.n // max(1, o.replicates)} held-out questions not "
                               f"used by the search, {o.replicates} replicate(s) on fresh seeds")
            if o.placebo is not None:
                self.console.print(o.placebo["statement"])
                if not improvement_shown(final["eval"]):
                    self.console.print(f"[bold yellow]{NOT_SHOWN}[/bold yellow]")
        else:
            self.console.print(f"final evaluation failed: {o.error}")
        self.journal.write_final(final)
        write_text_atomic(self.out / "best.dp", text)
        return final

    def _write_outputs(self, text: str, frame: pl.DataFrame | None) -> None:
        write_text_atomic(self.out / "best.dp", text)
        if frame is not None:
            # the engine's run result holds the data's own columns (a ``__meta`` of the data among
            # them) plus the row id added above: only the ids and the selector's column stay behind
            cols = [c for c in frame.columns if c not in (ROW_ID, TARGET_COLUMN)]
            if ROW_ID in frame.columns:
                frame = frame.sort(ROW_ID)
            buf = frame.select(cols).write_ndjson()
            write_bytes_atomic(self.out / "processed.jsonl", buf.encode("utf-8") if isinstance(buf, str) else buf)


def _agent_error(what: str, e: Exception) -> str:
    """One line for an agent failure (an AgentFailure's text already names the endpoint)."""
    text = " ".join(str(e).split())[:500]
    return f"the agent failed to {what}: {text}" if isinstance(e, AgentFailure) else \
        f"the agent failed to {what}: {type(e).__name__}: {text}"


def _diag_list(res) -> list[dict[str, Any]]:
    return [{"code": d.code, "message": d.message, "line": d.line, "column": d.column}
            for d in res.diagnostics if str(d.severity).endswith("error")][:20]


def _clip(text: str, limit: int) -> str:
    """An invalid proposal as sent back for repair: at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + f"\n# ... ({len(text) - limit} more characters not shown)"


def run_search(config: SearchConfig, evaluator: Evaluator | None = None, agent: Agent | None = None) -> SearchResult:
    """Run (or resume) a search; returns the best strategy, the records and the report."""
    return Search(config, evaluator=evaluator, agent=agent).run()
