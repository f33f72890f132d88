"""``evaluate``: train every arm with one recipe, R paired replicates, judge each pair, one interval.

The unit of work is one (arm, replicate): the arm's rows trained with the replicate's seed, its
answers and its reference scores -- each memoised by the arm's key (data fingerprint + recipe +
seed). The verdicts of a pair of arms are memoised by the two arm keys. :class:`Evaluation` runs
replicates one at a time (:meth:`Evaluation.replicate`, a pure function of its inputs, returning a
JSON-serialisable :class:`ReplicateResult`) and merges any set of them into an
:class:`EvalResult` (:meth:`Evaluation.combine`, :meth:`Evaluation.add`), so a search can race
candidates replicate by replicate and a cluster can compute replicates on different machines.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ._cache import atomic_write_json, read_json, resolve_cache_dir
from ._config import EVAL_VERSION, EvalConfig, canonical_hash
from ._data import Row, fingerprint_rows, load_rows, normalize_prompt, prompt_text, split_heldout
from ._generate import generate_answers
from ._interval import Interval, replicate_interval
from ._judges import Judge, JudgeItem, Verdict, judge_from_config
from ._score import mean_loss, score_references
from ._train import TrainedArm, find_arm, train_arm
from ._winrate import SliceStats, feedback_text, win_rate
from .errors import EvalInputError

__all__ = [
    "SEED_BLOCK",
    "ArmReport",
    "Comparison",
    "Contrast",
    "EvalResult",
    "Evaluation",
    "HeldoutReport",
    "PlaceboReport",
    "ReplicateResult",
    "arm_seed",
    "evaluate",
    "random_drop",
]

Log = Callable[[str], None]

#: Seeds of replicate r: ``train.seed + SEED_BLOCK * block + r``. Block 0 is shared by the baseline,
#: a paired candidate and a random-drop placebo (common random numbers); block 1 is an unpaired
#: candidate, block 2 the A/A placebo of a candidate that drops no rows.
SEED_BLOCK = 1000
_POINTS = {"a": 1.0, "tie": 0.5, "b": 0.0}
MAIN, BAND, VS_PLACEBO = "candidate-baseline", "placebo-baseline", "candidate-placebo"


def arm_seed(config: EvalConfig, replicate: int, block: int = 0) -> int:
    """The training seed (initialisation and data-order salt) of ``replicate`` in seed ``block``."""
    return config.train.seed + SEED_BLOCK * block + replicate


def random_drop(rows: Sequence[Row], count: int, seed: int | str) -> list[Row]:
    """``rows`` without ``count`` of them drawn uniformly at random with ``seed`` (order kept)."""
    if count <= 0:
        return list(rows)
    if count > len(rows):
        raise EvalInputError(f"cannot drop {count} of {len(rows)} rows")
    drop = set(random.Random(f"drop:{seed}").sample(range(len(rows)), count))
    return [r for j, r in enumerate(rows) if j not in drop]


class ArmReport(BaseModel):
    """What one arm was trained on and how it did (in one replicate, or summed over them)."""

    n_rows: int = Field(description="rows given")
    n_train: int = Field(description="rows trained on, after removing rows that ask held-out questions")
    removed_heldout_overlap: int
    data_fingerprint: str
    arm_key: str
    arm_path: str
    heldout_loss: float | None = Field(None, description="mean NLL per reference token on the held-out set")
    train_seconds: float
    trained_now: bool
    seed: int | None = None
    question_nll: list[float | None] = Field(
        default_factory=list, description="NLL per token of each held-out reference (None: no reference)"
    )


class HeldoutReport(BaseModel):
    """Where the held-out questions came from."""

    source: Literal["given", "split"]
    n: int
    seed: int | None = None
    split_from: Literal["baseline"] | None = None
    fingerprint: str


class Comparison(BaseModel):
    """The judge's verdicts on one pair of trained arms ("a" against "b"), one per held-out question."""

    a: str
    b: str
    verdicts: list[Verdict]
    from_cache: bool = False


class ReplicateResult(BaseModel):
    """Replicate ``index`` of an evaluation: its arms and the verdicts of each pair. JSON-serialisable,
    so it can be computed elsewhere and merged with :meth:`Evaluation.combine`."""

    evaluation: str = Field(description="key of the evaluation this replicate belongs to")
    index: int
    arms: dict[str, ArmReport]
    comparisons: dict[str, Comparison]
    timings: dict[str, float] = Field(default_factory=dict)

    @property
    def from_cache(self) -> bool:
        return not any(a.trained_now for a in self.arms.values()) and all(
            c.from_cache for c in self.comparisons.values()
        )


class Contrast(BaseModel):
    """Arm ``a`` against arm ``b`` over the replicates: win rate (the judge's verdicts; for the
    likelihood judge they follow the NLL) and the mean NLL difference ``b - a`` per reference token
    (positive: ``a`` gives the references the higher likelihood)."""

    a: str
    b: str
    win: Interval
    nll: Interval | None = None
    wins: int = 0
    ties: int = 0
    losses: int = 0
    failures: int = 0


class PlaceboReport(BaseModel):
    """The candidate against "dropping that many rows at random" (or, when it drops none, against
    the unprocessed data trained with other seeds)."""

    kind: Literal["random-drop", "a/a"]
    dropped: int = Field(description="rows each placebo arm dropped: baseline rows - candidate rows")
    seed: int
    band: Contrast = Field(description="placebo against the baseline: what chance alone does")
    candidate_vs_placebo: Contrast
    beats_placebo: bool | None = Field(description="True/False when the interval excludes 0.5, else None")
    statement: str


def _f(x: float | None, d: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _iv(i: Interval | None, d: int = 3) -> str:
    if i is None or i.estimate is None:
        return "n/a"
    return f"{i.estimate:.{d}f} [{_f(i.low, d)}, {_f(i.high, d)}]"


class EvalResult(BaseModel):
    """The answer to "does a model trained on the candidate beat one trained on the baseline?".

    ``win_rate`` is the candidate's (wins + ties / 2) / judged questions, ``ci_low``-``ci_high`` its
    interval (over ``replicates`` trained pairs: with one, the interval excludes training variance,
    ``training_variance`` is False). ``nll_diff`` is the paired per-question difference of the
    references' NLL per token, baseline minus candidate (positive favours the candidate).
    ``placebo`` compares the candidate with random drops of as many rows. JSON-serialisable.
    """

    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    n: int
    wins: int
    ties: int
    losses: int
    failures: int
    replicates: int = 1
    paired: bool = Field(True, description="replicate r trains every arm with the same seed")
    training_variance: bool = False
    between_replicate_sd: float | None = Field(
        None, description="standard deviation of the replicates' win rates"
    )
    nll_diff: float | None = None
    nll_ci_low: float | None = None
    nll_ci_high: float | None = None
    contrast: Contrast | None = None
    placebo: PlaceboReport | None = None
    slices: dict[str, SliceStats] = Field(default_factory=dict)
    failure_counts: dict[str, int] = Field(default_factory=dict)
    rationales: list[str] = Field(default_factory=list)
    feedback: str
    candidate_heldout_loss: float | None
    baseline_heldout_loss: float | None
    timings: dict[str, float] = Field(
        description="seconds per stage, summed over replicates; cached stages ~0"
    )
    candidate: ArmReport
    baseline: ArmReport
    heldout: HeldoutReport
    judge: str
    key: str
    config: dict[str, Any]
    from_cache: bool = False
    verdicts: list[Verdict] = Field(
        default_factory=list, description="candidate vs baseline, replicate by replicate"
    )
    replicate_results: list[ReplicateResult] = Field(default_factory=list)
    version: str = EVAL_VERSION

    def summary(self) -> str:
        """A readable multi-line summary."""
        h = self.heldout
        where = (
            f"{h.n} questions split off the baseline (seed {h.seed})"
            if h.source == "split"
            else f"{h.n} given questions"
        )
        lines = [
            f"win rate of the candidate: {_f(self.win_rate)} ({self.ci_level:.0%} CI {_f(self.ci_low)}-{_f(self.ci_high)})"
            f"{'  [from cache]' if self.from_cache else ''}",
            f"  {self.wins} wins, {self.ties} ties, {self.losses} losses, {self.failures} failures "
            f"over {h.n} held-out questions x {self.replicates} replicate{'s' if self.replicates > 1 else ''}; "
            f"judge: {self.judge}",
        ]
        if self.nll_diff is not None:
            lines.append(
                f"NLL difference per reference token, baseline - candidate (positive favours the candidate): "
                f"{_f(self.nll_diff, 4)} ({self.ci_level:.0%} CI {_f(self.nll_ci_low, 4)}-{_f(self.nll_ci_high, 4)})"
            )
        lines.append(_replicate_note(self))
        if self.placebo is not None:
            lines.append(self.placebo.statement)
        lines += [
            f"held-out loss (mean NLL per reference token, lower is better): candidate "
            f"{_f(self.candidate_heldout_loss)}, baseline {_f(self.baseline_heldout_loss)}",
            f"held-out: {where}; rows asking them removed from training: candidate "
            f"{self.candidate.removed_heldout_overlap}, baseline {self.baseline.removed_heldout_overlap}",
            f"trained on: candidate {self.candidate.n_train} rows, baseline {self.baseline.n_train} rows",
            "stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()),
        ]
        if self.failures:
            lines.append(
                "judge failures: " + ", ".join(f"{k} {n}" for k, n in sorted(self.failure_counts.items()))
            )
        if self.slices:
            lines.append("by category:")
            for k, s in self.slices.items():
                lines.append(
                    f"  {k}: {_f(s.win_rate)} ({_f(s.ci_low)}-{_f(s.ci_high)}), n={s.n}, "
                    f"{s.wins}/{s.ties}/{s.losses} w/t/l" + (f", {s.failures} failed" if s.failures else "")
                )
        if self.rationales:
            lines.append("judge rationales:")
            lines.extend(f"  - {r[:300]}" for r in self.rationales)
        return "\n".join(lines)


def _replicate_note(r: EvalResult) -> str:
    if r.replicates < 2:
        return (
            "one replicate: the interval covers the choice of questions only, NOT training variance "
            "(seed, data order); a rerun with another seed can land outside it -- use replicates >= 3"
        )
    per = ", ".join(_f(x) for x in (r.contrast.win.per_replicate if r.contrast else []))
    return (
        f"{r.replicates} {'paired' if r.paired else 'unpaired'} replicates (win rate per replicate: {per}; "
        f"between-replicate sd "
        f"{_f(r.between_replicate_sd)}): the interval includes training variance"
    )


def _remove_overlap(rows: list[Row], keys: set[str]) -> tuple[list[Row], int]:
    kept = [r for r in rows if normalize_prompt(prompt_text(r["instruction"], r.get("input"))) not in keys]
    return kept, len(rows) - len(kept)


def _points(c: Comparison) -> list[float | None]:
    return [_POINTS.get(v.winner) for v in c.verdicts]


class Evaluation:
    """One comparison of a candidate with a baseline on held-out questions, replicate by replicate.

    ``heldout``: a data source of held-out questions (with reference answers in ``output``), an int
    (that many questions split off the baseline with ``config.heldout_seed``), or None
    (``config.heldout_n`` split off the baseline). Rows of either arm that ask a held-out question
    are removed before training and counted. ``judge`` overrides ``config.judge``. ``placebo``
    (default ``config.placebo``) adds a placebo arm per replicate. ``paired=False`` trains the
    candidate with other seeds than the baseline (an A/A check of the seed noise).
    """

    def __init__(
        self,
        candidate: Any,
        baseline: Any,
        heldout: Any = None,
        config: EvalConfig | None = None,
        cache_dir: str | Path | None = None,
        *,
        judge: Judge | None = None,
        log: Log | None = None,
        placebo: bool | None = None,
        paired: bool = True,
    ):
        t0 = time.perf_counter()
        cfg = self.config = config or EvalConfig()
        self.say: Log = log or (lambda _m: None)
        self.placebo = cfg.placebo if placebo is None else placebo
        self.paired = paired
        cand_all = load_rows(candidate, category_column=None, what="candidate data")
        cat = cfg.category_column
        if heldout is None or (isinstance(heldout, int) and not isinstance(heldout, bool)):
            n = cfg.heldout_n if heldout is None else int(heldout)
            base_full = load_rows(baseline, category_column=cat, what="baseline data")
            base_df, held_df = split_heldout(base_full, n, cfg.heldout_seed)
            base_all = load_rows(base_df, category_column=None, what="baseline data")
            held = load_rows(held_df, category_column="category", what="held-out data")
            held_report: dict[str, Any] = dict(
                source="split", n=len(held), seed=cfg.heldout_seed, split_from="baseline"
            )
            base_given = len(base_full)
        else:
            base_all = load_rows(baseline, category_column=None, what="baseline data")
            held = load_rows(heldout, category_column=cat, what="held-out data", require_output=False)
            held_report = dict(source="given", n=len(held))
            base_given = len(base_all)
        if not held:
            raise EvalInputError("the held-out set is empty")
        keys = {normalize_prompt(prompt_text(r["instruction"], r.get("input"))) for r in held}
        self.cand_train, self.cand_removed = _remove_overlap(cand_all, keys)
        self.base_train, self.base_removed = _remove_overlap(base_all, keys)
        for name, rows, removed in (
            ("candidate", self.cand_train, self.cand_removed),
            ("baseline", self.base_train, self.base_removed),
        ):
            if not rows:
                raise EvalInputError(
                    f"{name} training data is empty"
                    + (f" after removing {removed} rows that ask held-out questions" if removed else "")
                )
        self.n_given = {"candidate": len(cand_all), "baseline": base_given}
        self.held = held
        self.prompts = [prompt_text(r["instruction"], r.get("input")) for r in held]
        self.refs = [r for r in held if r["output"]]
        #: rows a placebo arm drops: the candidate is read as a processed subset of the baseline
        self.dropped = max(0, len(self.base_train) - len(self.cand_train))
        self.cache = resolve_cache_dir(cache_dir)  # only once the inputs are known to be usable
        self.judge = judge or judge_from_config(cfg, cache_dir=self.cache)
        self.judge_key = self.judge.cache_key()
        self.fp = {
            "candidate": fingerprint_rows(self.cand_train),
            "baseline": fingerprint_rows(self.base_train),
            "heldout": fingerprint_rows(held),
        }
        self.held_report = HeldoutReport(**held_report, fingerprint=self.fp["heldout"])
        self.key = canonical_hash(
            {
                **self.fp,
                "config": cfg.cache_key(),
                "judge": self.judge_key,
                "placebo": [self.placebo, cfg.placebo_seed],
                "paired": paired,
            }
        )
        self.prepare_seconds = time.perf_counter() - t0

    # -- the arms of one replicate

    def arm_names(self) -> list[str]:
        return ["baseline", "candidate"] + (["placebo"] if self.placebo else [])

    def seed(self, name: str, r: int) -> int:
        block = {"baseline": 0, "candidate": 0 if self.paired else 1, "placebo": 0 if self.dropped else 2}[
            name
        ]
        return arm_seed(self.config, r, block)

    def placebo_rows(self, r: int) -> list[Row]:
        """Replicate ``r``'s placebo: the baseline's training rows minus ``dropped`` of them drawn at
        random (seed: ``config.placebo_seed`` and ``r``); all of them when the candidate drops none."""
        return random_drop(self.base_train, self.dropped, f"{self.config.placebo_seed}:{r}")

    def rows(self, name: str, r: int) -> list[Row]:
        if name == "placebo":
            return self.placebo_rows(r)
        return self.cand_train if name == "candidate" else self.base_train

    def arm_config(self, name: str, r: int) -> EvalConfig:
        return self.config.with_overrides(train={"seed": self.seed(name, r)})

    def pending(self, replicates: int) -> list[tuple[str, int]]:
        """The (arm, replicate) units of ``replicates`` replicates not in the memo yet (to train)."""
        return [
            (name, r)
            for r in range(replicates)
            for name in self.arm_names()
            if find_arm(
                self.rows(name, r),
                self.arm_config(name, r),
                cache_dir=self.cache,
                tokenizer_data=self.base_train,
            )
            is None
        ]

    def train_pending(self, replicates: int, workers: int | None = None) -> int:
        """Train the units of ``replicates`` replicates not in the memo yet, ``workers`` (default
        ``config.workers``) at a time, each in its own process; returns how many were trained. The
        results land in the memo, where :meth:`replicate` finds them. With one worker (or one unit)
        nothing happens here: :meth:`replicate` trains in this process."""
        n = self.config.workers if workers is None else workers
        todo = self.pending(replicates)  # also trains the shared tokenizer once, before the workers start
        if n <= 1 or len(todo) <= 1:
            return 0
        self.say(f"training {len(todo)} arms, {min(n, len(todo))} processes at a time ...")
        # each worker also answers and scores the held-out questions with the arm it trained (into the
        # memo, where replicate() finds them): done by the parent, one arm after another, they were the
        # serial part of a parallel evaluation. vLLM generation stays in the parent (one engine per GPU).
        prompts = self.prompts if self.needs_answers and self.config.generate.backend == "transformers" else []
        run_in_processes(
            _train_unit,
            [
                (self.rows(name, r), self.arm_config(name, r), str(self.cache), self.base_train, prompts, self.refs)
                for name, r in todo
            ],
            n,
        )
        return len(todo)

    @property
    def needs_answers(self) -> bool:
        """Whether each arm generates answers: the judge needs them, or they are asked for the report."""
        return self.config.generate.enabled or self.judge.needs_answers

    def replicate(self, r: int) -> ReplicateResult:
        """Train (or find) every arm of replicate ``r`` and judge each pair: the unit of work."""
        if r < 0:
            raise ValueError(f"replicate index must be >= 0, got {r}")
        say = self.say
        timings: dict[str, float] = {}
        t_start = time.perf_counter()

        def timed(stage: str, fn: Callable[[], Any]) -> Any:
            t = time.perf_counter()
            say(f"{stage} ..." if r == 0 else f"{stage} (replicate {r}) ...")
            out = fn()
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t
            say(f"{stage}: {time.perf_counter() - t:.1f} s")
            return out

        arms: dict[str, TrainedArm] = {}
        reports: dict[str, ArmReport] = {}
        answers: dict[str, list[str | None]] = {}
        for name in self.arm_names():
            rows, acfg = self.rows(name, r), self.arm_config(name, r)
            arm = arms[name] = timed(
                f"train_{name}",
                lambda rows=rows, acfg=acfg: train_arm(
                    rows, acfg, cache_dir=self.cache, tokenizer_data=self.base_train, log=say
                ),
            )
            answers[name] = [None] * len(self.held)
            if self.needs_answers:
                answers[name] = timed(
                    f"generate_{name}",
                    lambda arm=arm, acfg=acfg: generate_answers(
                        arm, self.prompts, acfg, cache_dir=self.cache
                    ),
                )
            nll: list[float | None] = [None] * len(self.held)
            loss = None
            if self.refs:
                scores = timed(
                    f"score_{name}",
                    lambda arm=arm, acfg=acfg: score_references(arm, self.refs, acfg, cache_dir=self.cache),
                )
                it = iter(scores)
                nll = [next(it).per_token if h["output"] else None for h in self.held]
                loss = mean_loss(scores)
            reports[name] = ArmReport(
                n_rows=self.n_given.get(name, len(self.base_train)),
                n_train=len(rows),
                removed_heldout_overlap={"candidate": self.cand_removed}.get(name, self.base_removed),
                data_fingerprint=arm.data_fingerprint,
                arm_key=arm.key,
                arm_path=arm.path,
                heldout_loss=loss,
                train_seconds=arm.train_seconds,
                trained_now=not arm.from_cache,
                seed=self.seed(name, r),
                question_nll=nll,
            )
        pairs = [("candidate", "baseline")] + (
            [("placebo", "baseline"), ("candidate", "placebo")] if self.placebo else []
        )
        comparisons = {
            f"{a}-{b}": timed("judge", lambda a=a, b=b: self._compare(a, b, arms, answers)) for a, b in pairs
        }
        timings["total"] = time.perf_counter() - t_start
        return ReplicateResult(
            evaluation=self.key,
            index=r,
            arms=reports,
            comparisons=comparisons,
            timings={k: round(v, 3) for k, v in timings.items()},
        )

    def _compare(
        self, a: str, b: str, arms: dict[str, TrainedArm], answers: dict[str, list[str | None]]
    ) -> Comparison:
        key = canonical_hash(
            {
                "a": arms[a].key,
                "b": arms[b].key,
                "heldout": self.fp["heldout"],
                "config": self.config.cache_key(),
                "judge": self.judge_key,
            }
        )
        path = self.cache / "pairs" / f"{key[:32]}.json"
        if self.judge_key is not None:
            hit = read_json(path)
            if hit is not None:
                try:
                    return Comparison.model_validate({**hit, "from_cache": True})
                except ValueError:
                    pass  # a stale or corrupt entry is recomputed
        items = [
            JudgeItem(
                id=str(i),
                question=p,
                reference=h["output"] or None,
                answer_a=x,
                answer_b=y,
                category=h["category"],
            )
            for i, (p, h, x, y) in enumerate(
                zip(self.prompts, self.held, answers[a], answers[b], strict=True)
            )
        ]
        try:
            verdicts = list(self.judge.judge(items, arm_a=arms[a], arm_b=arms[b]))
            if len(verdicts) != len(items):
                verdicts = [
                    Verdict.failed(
                        it.id,
                        f"judge returned {len(verdicts)} verdicts for {len(items)} items",
                        "judge-error",
                    )
                    for it in items
                ]
        except Exception as e:  # a judge that breaks its contract still does not lose the run
            verdicts = [
                Verdict.failed(it.id, f"judge raised {type(e).__name__}: {e}", "judge-error") for it in items
            ]
        out = Comparison(a=a, b=b, verdicts=verdicts)
        if self.judge_key is not None and not any(v.winner == "failed" for v in verdicts):
            atomic_write_json(path, out.model_dump(mode="json", exclude={"from_cache"}))
        return out

    # -- merging replicates

    def _contrast(self, reps: list[ReplicateResult], name: str) -> Contrast:
        cfg = self.config
        a, b = name.split("-")
        comps = [rep.comparisons[name] for rep in reps]
        iv = dict(level=cfg.ci_level, bootstrap_samples=cfg.bootstrap_samples, seed=cfg.bootstrap_seed)
        win = replicate_interval([_points(c) for c in comps], bounds=(0.0, 1.0), **iv)
        nll = None
        if self.refs:
            diffs = [
                [
                    None if x is None or y is None else y - x
                    for x, y in zip(rep.arms[a].question_nll, rep.arms[b].question_nll, strict=True)
                ]
                for rep in reps
            ]
            nll = replicate_interval(diffs, **iv)
        winners = [v.winner for c in comps for v in c.verdicts]
        return Contrast(
            a=a,
            b=b,
            win=win,
            nll=nll,
            wins=winners.count("a"),
            ties=winners.count("tie"),
            losses=winners.count("b"),
            failures=winners.count("failed"),
        )

    def _placebo_report(self, reps: list[ReplicateResult]) -> PlaceboReport:
        band, cvp = self._contrast(reps, BAND), self._contrast(reps, VS_PLACEBO)
        w = cvp.win
        beats = (
            None
            if w.low is None or w.high is None
            else (True if w.low > 0.5 else False if w.high < 0.5 else None)
        )
        if self.dropped:
            kind: Literal["random-drop", "a/a"] = "random-drop"
            what = f"dropping the same number of rows ({self.dropped}) at random from the baseline's rows"
        else:
            kind = "a/a"
            what = (
                "the unprocessed data trained with other seeds (the candidate drops no rows: an A/A placebo)"
            )
        verdict = {True: "BEATS", False: "does WORSE than", None: "cannot be told apart from"}[beats]
        per = ", ".join(_f(x) for x in band.win.per_replicate)
        text = (
            f"placebo: the candidate {verdict} {what}: win rate against the placebo {_iv(w)}"
            + (f", NLL difference {_iv(cvp.nll, 4)}" if cvp.nll else "")
            + f"; placebo band (placebo vs the unprocessed data): {_iv(band.win)}, per replicate {per}"
        )
        if len(reps) < 2:
            text += " (one replicate: these intervals exclude training variance; do not trust the verdict)"
        return PlaceboReport(
            kind=kind,
            dropped=self.dropped,
            seed=self.config.placebo_seed,
            band=band,
            candidate_vs_placebo=cvp,
            beats_placebo=beats,
            statement=text,
        )

    def combine(self, results: Sequence[ReplicateResult]) -> EvalResult:
        """Merge replicates of this evaluation (any indices, each at most once) into one result."""
        reps = sorted(results, key=lambda x: x.index)
        if not reps:
            raise ValueError("no replicate to combine")
        if len({x.index for x in reps}) != len(reps):
            raise ValueError(f"replicate indices repeat: {[x.index for x in reps]}")
        for x in reps:
            if x.evaluation != self.key:
                raise ValueError(f"replicate {x.index} belongs to another evaluation ({x.evaluation[:12]})")
            if self.placebo and BAND not in x.comparisons:
                raise ValueError(f"replicate {x.index} has no placebo arm")
        cfg = self.config
        main = self._contrast(reps, MAIN)
        verdicts = [v for x in reps for v in x.comparisons[MAIN].verdicts]
        wr = win_rate(
            verdicts,
            categories=[h["category"] for _ in reps for h in self.held],
            bootstrap_samples=cfg.bootstrap_samples,
            seed=cfg.bootstrap_seed,
            ci_level=cfg.ci_level,
            feedback_examples=cfg.feedback_examples,
            judge_name=self.judge.name,
        )
        if len(reps) > 1:  # headline and slices over replicates (R = 1 is the bootstrap of win_rate)
            wr.win_rate, wr.ci_low, wr.ci_high = main.win.estimate, main.win.low, main.win.high
            for cat, s in wr.slices.items():
                cols = [
                    i
                    for i, h in enumerate(self.held)
                    if ("(none)" if h["category"] is None else h["category"]) == cat
                ]
                iv = replicate_interval(
                    [[_points(x.comparisons[MAIN])[i] for i in cols] for x in reps],
                    level=cfg.ci_level,
                    bounds=(0.0, 1.0),
                )
                s.win_rate, s.ci_low, s.ci_high = iv.estimate, iv.low, iv.high
            wr.feedback = feedback_text(wr, self.judge.name, cfg.ci_level)
        placebo = self._placebo_report(reps) if self.placebo else None
        timings: dict[str, float] = {"prepare": round(self.prepare_seconds, 3)}
        for x in reps:
            for k, v in x.timings.items():
                timings[k] = round(timings.get(k, 0.0) + v, 3)

        def arm(name: str) -> ArmReport:
            first = reps[0].arms[name]
            return first.model_copy(
                update={
                    "trained_now": any(x.arms[name].trained_now for x in reps),
                    "train_seconds": round(sum(x.arms[name].train_seconds for x in reps), 3),
                    "heldout_loss": _mean([x.arms[name].heldout_loss for x in reps]),
                }
            )

        cand, base = arm("candidate"), arm("baseline")
        result = EvalResult(
            **wr.model_dump(exclude={"feedback"}),
            feedback="",
            ci_level=cfg.ci_level,
            replicates=len(reps),
            paired=self.paired,
            training_variance=main.win.training_variance,
            between_replicate_sd=main.win.between_sd,
            nll_diff=main.nll.estimate if main.nll else None,
            nll_ci_low=main.nll.low if main.nll else None,
            nll_ci_high=main.nll.high if main.nll else None,
            contrast=main,
            placebo=placebo,
            candidate_heldout_loss=cand.heldout_loss,
            baseline_heldout_loss=base.heldout_loss,
            timings=timings,
            candidate=cand,
            baseline=base,
            heldout=self.held_report,
            judge=self.judge.name,
            key=canonical_hash({"evaluation": self.key, "replicates": [x.index for x in reps]}),
            config=cfg.model_dump(mode="json"),
            from_cache=all(x.from_cache for x in reps),
            verdicts=verdicts,
            replicate_results=reps,
        )
        fb = [wr.feedback]
        if result.candidate_heldout_loss is not None and result.baseline_heldout_loss is not None:
            fb.append(
                f"held-out loss (mean NLL per token, lower is better): candidate {result.candidate_heldout_loss:.3f}, "
                f"baseline {result.baseline_heldout_loss:.3f}"
            )
        if result.nll_diff is not None:
            fb.append(f"NLL difference per token, baseline - candidate: {_iv(main.nll, 4)}")
        if len(reps) > 1 or placebo is not None:
            fb.append(_replicate_note(result))
        if placebo is not None:
            fb.append(placebo.statement)
        result.feedback = "\n".join(fb)
        return result

    def add(self, result: EvalResult, r: int) -> EvalResult:
        """``result`` with replicate ``r`` merged in (the unit of work runs, or comes from the memo)."""
        if any(x.index == r for x in result.replicate_results):
            raise ValueError(f"replicate {r} is already in the result")
        return self.combine([*result.replicate_results, self.replicate(r)])

    def run(self, replicates: int | None = None) -> EvalResult:
        """Replicates ``0 .. replicates - 1`` (default ``config.replicates``), combined."""
        n = self.config.replicates if replicates is None else replicates
        if n < 1:
            raise ValueError(f"replicates must be >= 1, got {n}")
        t = time.perf_counter()
        self.train_pending(n)
        result = self.combine([self.replicate(r) for r in range(n)])
        result.timings["total"] = round(time.perf_counter() - t + self.prepare_seconds, 3)
        return result


def run_in_processes(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], workers: int) -> None:
    """``fn(*args)`` for every ``args`` in ``calls``, each in a spawned process, ``workers`` at a time.

    The first failure, or Ctrl-C, stops the rest: units not started are cancelled and the running
    workers are ended (their results land in the memo atomically, so a half-trained arm leaves nothing
    behind), then the exception propagates. Without this a failing unit surfaced only after every
    other unit had trained, and Ctrl-C left the queued units training. The workers ignore SIGINT: the
    parent alone answers Ctrl-C, so no worker prints a traceback of its own: they are started (on
    submit) while the parent ignores SIGINT, a setting a new process keeps from its first instruction,
    before Python could turn the signal into a KeyboardInterrupt in the middle of its imports."""
    import signal
    import threading

    ctx = multiprocessing.get_context("spawn")  # fork after torch has threads is unsafe
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(calls))),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    # only the main thread may change handlers; None: a handler not set from Python, left alone
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    try:
        if previous is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            futures = [pool.submit(fn, *args) for args in calls]
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        for fut in as_completed(futures):
            fut.result()
    except BaseException:
        # the running processes (ProcessPoolExecutor.terminate_workers from Python 3.14 does the same)
        running = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.join()
        raise
    pool.shutdown()


def _init_worker(parent: int) -> None:
    """A worker ignores Ctrl-C (the parent answers it) and ends with its parent: a parent killed
    outright (SIGKILL, the OOM killer, a closed terminal's SIGHUP) runs no cleanup, and its workers
    would go on training for minutes, unseen. Linux tells a child when its parent dies
    (``PR_SET_PDEATHSIG``); elsewhere the workers end at their next unit."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
            os._exit(1)


def _train_unit(
    rows: list[Row],
    config: EvalConfig,
    cache_dir: str,
    tokenizer_data: list[Row],
    prompts: Sequence[str] = (),
    refs: Sequence[Row] = (),
) -> None:
    """One (arm, replicate) unit in a worker process: train it, then generate its answers to
    ``prompts`` and score ``refs`` under it, all into the memo."""
    arm = train_arm(rows, config, cache_dir=cache_dir, tokenizer_data=tokenizer_data)
    if prompts:
        generate_answers(arm, list(prompts), config, cache_dir=cache_dir)
    if refs:
        score_references(arm, list(refs), config, cache_dir=cache_dir)


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def evaluate(
    candidate: Any,
    baseline: Any,
    heldout: Any = None,
    config: EvalConfig | None = None,
    cache_dir: str | Path | None = None,
    *,
    judge: Judge | None = None,
    log: Log | None = None,
    replicates: int | None = None,
    placebo: bool | None = None,
    paired: bool = True,
) -> EvalResult:
    """Fine-tune arms on ``candidate`` and on ``baseline`` with one recipe, ``replicates`` times with
    paired seeds (default ``config.replicates``), answer the held-out questions, judge each pair and
    return the candidate's win rate and NLL difference with intervals over replicates and questions.

    ``placebo`` (default ``config.placebo``) also trains, per replicate, the baseline minus as many
    random rows as the candidate dropped, and reports the candidate against it. See
    :class:`Evaluation` for ``heldout``, ``judge`` and ``paired``. Everything is memoised per
    replicate: each trained arm with its answers and reference scores, and each pair's verdicts
    (unless some failed, so a flaky endpoint is asked again); a baseline trained once is reused by
    every candidate.
    """
    ev = Evaluation(
        candidate, baseline, heldout, config, cache_dir, judge=judge, log=log, placebo=placebo, paired=paired
    )
    return ev.run(replicates)
