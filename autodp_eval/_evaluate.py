"""``evaluate``: train both arms with one recipe, answer held-out questions, judge, win rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ._cache import atomic_write_json, read_json, resolve_cache_dir
from ._config import EVAL_VERSION, EvalConfig, canonical_hash
from ._data import fingerprint_rows, load_rows, normalize_prompt, prompt_text, split_heldout
from ._generate import generate_answers
from ._judges import Judge, JudgeItem, Verdict, judge_from_config
from ._score import mean_loss, score_references
from ._train import TrainedArm, train_arm
from ._winrate import SliceStats, win_rate
from .errors import EvalInputError

__all__ = ["ArmReport", "EvalResult", "HeldoutReport", "evaluate"]

Log = Callable[[str], None]


class ArmReport(BaseModel):
    """What one arm was trained on and how it did."""

    n_rows: int = Field(description="rows given")
    n_train: int = Field(description="rows trained on, after removing rows that ask held-out questions")
    removed_heldout_overlap: int
    data_fingerprint: str
    arm_key: str
    arm_path: str
    heldout_loss: float | None = Field(None, description="mean NLL per reference token on the held-out set")
    train_seconds: float
    trained_now: bool


class HeldoutReport(BaseModel):
    """Where the held-out questions came from."""

    source: Literal["given", "split"]
    n: int
    seed: int | None = None
    split_from: Literal["baseline"] | None = None
    fingerprint: str


class EvalResult(BaseModel):
    """The answer to "does a model trained on the candidate beat one trained on the baseline?".

    ``win_rate`` is the candidate's (wins + ties / 2) / judged questions, ``ci_low``-``ci_high`` its
    bootstrap interval; failures are counted apart. JSON-serialisable (``model_dump_json``).
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
    slices: dict[str, SliceStats] = Field(default_factory=dict)
    failure_counts: dict[str, int] = Field(default_factory=dict)
    rationales: list[str] = Field(default_factory=list)
    feedback: str
    candidate_heldout_loss: float | None
    baseline_heldout_loss: float | None
    timings: dict[str, float] = Field(description="seconds per stage; cached stages take ~0")
    candidate: ArmReport
    baseline: ArmReport
    heldout: HeldoutReport
    judge: str
    key: str
    config: dict[str, Any]
    from_cache: bool = False
    verdicts: list[Verdict] = Field(default_factory=list)
    version: str = EVAL_VERSION

    def summary(self) -> str:
        """A readable multi-line summary."""

        def f(x: float | None, d: int = 3) -> str:
            return "n/a" if x is None else f"{x:.{d}f}"

        h = self.heldout
        where = (
            f"{h.n} questions split off the baseline (seed {h.seed})"
            if h.source == "split"
            else f"{h.n} given questions"
        )
        lines = [
            f"win rate of the candidate: {f(self.win_rate)} ({self.ci_level:.0%} CI {f(self.ci_low)}-{f(self.ci_high)})"
            f"{'  [from cache]' if self.from_cache else ''}",
            f"  {self.wins} wins, {self.ties} ties, {self.losses} losses, {self.failures} failures "
            f"over {self.n} held-out questions; judge: {self.judge}",
            f"held-out loss (mean NLL per reference token, lower is better): candidate "
            f"{f(self.candidate_heldout_loss)}, baseline {f(self.baseline_heldout_loss)}",
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
                    f"  {k}: {f(s.win_rate)} ({f(s.ci_low)}-{f(s.ci_high)}), n={s.n}, "
                    f"{s.wins}/{s.ties}/{s.losses} w/t/l" + (f", {s.failures} failed" if s.failures else "")
                )
        if self.rationales:
            lines.append("judge rationales:")
            lines.extend(f"  - {r[:300]}" for r in self.rationales)
        return "\n".join(lines)


def _arm_report(
    arm: TrainedArm, n_rows: int, train: list[dict[str, Any]], removed: int, fp: str, loss: float | None
) -> ArmReport:
    return ArmReport(
        n_rows=n_rows,
        n_train=len(train),
        removed_heldout_overlap=removed,
        data_fingerprint=fp,
        arm_key=arm.key,
        arm_path=arm.path,
        heldout_loss=loss,
        train_seconds=arm.train_seconds,
        trained_now=not arm.from_cache,
    )


def _remove_overlap(rows: list[dict[str, Any]], keys: set[str]) -> tuple[list[dict[str, Any]], int]:
    kept = [r for r in rows if normalize_prompt(prompt_text(r["instruction"], r.get("input"))) not in keys]
    return kept, len(rows) - len(kept)


def evaluate(
    candidate: Any,
    baseline: Any,
    heldout: Any = None,
    config: EvalConfig | None = None,
    cache_dir: str | Path | None = None,
    *,
    judge: Judge | None = None,
    log: Log | None = None,
) -> EvalResult:
    """Fine-tune one arm on ``candidate`` and one on ``baseline`` with the same recipe, answer the
    held-out questions with both, judge them pairwise and return the candidate's win rate.

    ``heldout``: a data source of held-out questions (with reference answers in ``output``), an int
    (that many questions split off the baseline with ``config.heldout_seed``), or None
    (``config.heldout_n`` split off the baseline). Rows of either arm that ask a held-out question
    are removed before training and counted. ``judge`` overrides ``config.judge``.

    Memoised: the result by (both data fingerprints, held-out fingerprint, config, judge) -- unless
    some verdicts failed, so a flaky endpoint is asked again -- and each trained arm, its answers and
    its reference scores separately, so a baseline trained once is reused by every candidate.
    """
    cfg = config or EvalConfig()
    say: Log = log or (lambda _m: None)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    cand_all = load_rows(candidate, category_column=None, what="candidate data")
    cat = cfg.category_column
    if heldout is None or (isinstance(heldout, int) and not isinstance(heldout, bool)):
        n = cfg.heldout_n if heldout is None else int(heldout)
        base_full = load_rows(baseline, category_column=cat, what="baseline data")
        base_df, held_df = split_heldout(base_full, n, cfg.heldout_seed)
        base_all = load_rows(base_df, category_column=None, what="baseline data")
        held = load_rows(held_df, category_column="category", what="held-out data")
        held_report = dict(source="split", n=len(held), seed=cfg.heldout_seed, split_from="baseline")
        base_given = len(base_full)
    else:
        base_all = load_rows(baseline, category_column=None, what="baseline data")
        held = load_rows(heldout, category_column=cat, what="held-out data", require_output=False)
        held_report = dict(source="given", n=len(held))
        base_given = len(base_all)
    if not held:
        raise EvalInputError("the held-out set is empty")
    keys = {normalize_prompt(prompt_text(r["instruction"], r.get("input"))) for r in held}
    cand_train, cand_removed = _remove_overlap(cand_all, keys)
    base_train, base_removed = _remove_overlap(base_all, keys)
    for name, rows, removed in (
        ("candidate", cand_train, cand_removed),
        ("baseline", base_train, base_removed),
    ):
        if not rows:
            raise EvalInputError(
                f"{name} training data is empty"
                + (f" after removing {removed} rows that ask held-out questions" if removed else "")
            )
    timings["prepare"] = time.perf_counter() - t_start

    cache = resolve_cache_dir(cache_dir)  # only once the inputs are known to be usable
    judge = judge or judge_from_config(cfg, cache_dir=cache)
    judge_key = judge.cache_key()
    cand_fp, base_fp, held_fp = (
        fingerprint_rows(cand_train),
        fingerprint_rows(base_train),
        fingerprint_rows(held),
    )
    key = canonical_hash(
        {
            "candidate": cand_fp,
            "baseline": base_fp,
            "heldout": held_fp,
            "config": cfg.cache_key(),
            "judge": judge_key,
        }
    )
    result_path = cache / "evals" / f"{key[:32]}.json"
    if judge_key is not None:
        hit = read_json(result_path)
        if hit is not None:
            try:
                res = EvalResult.model_validate(hit)
                res.from_cache = True
                say("evaluation found in the cache")
                return res
            except ValueError:
                pass  # a stale or corrupt entry is recomputed

    def timed(stage: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        say(f"{stage} ...")
        out = fn()
        timings[stage] = time.perf_counter() - t
        say(f"{stage}: {timings[stage]:.1f} s")
        return out

    arm_b: TrainedArm = timed(
        "train_baseline",
        lambda: train_arm(base_train, cfg, cache_dir=cache, tokenizer_data=base_train, log=say),
    )
    arm_a: TrainedArm = timed(
        "train_candidate",
        lambda: train_arm(cand_train, cfg, cache_dir=cache, tokenizer_data=base_train, log=say),
    )
    prompts = [prompt_text(r["instruction"], r.get("input")) for r in held]
    answers_a: list[str | None] = [None] * len(held)
    answers_b: list[str | None] = [None] * len(held)
    if cfg.generate.enabled or judge.needs_answers:
        answers_b = timed("generate_baseline", lambda: generate_answers(arm_b, prompts, cfg, cache_dir=cache))
        answers_a = timed(
            "generate_candidate", lambda: generate_answers(arm_a, prompts, cfg, cache_dir=cache)
        )
    refs = [r for r in held if r["output"]]
    loss_b = loss_a = None
    if refs:
        loss_b = mean_loss(
            timed("score_baseline", lambda: score_references(arm_b, refs, cfg, cache_dir=cache))
        )
        loss_a = mean_loss(
            timed("score_candidate", lambda: score_references(arm_a, refs, cfg, cache_dir=cache))
        )

    items = [
        JudgeItem(
            id=str(i),
            question=p,
            reference=r["output"] or None,
            answer_a=a,
            answer_b=b,
            category=r["category"],
        )
        for i, (p, r, a, b) in enumerate(zip(prompts, held, answers_a, answers_b, strict=True))
    ]

    def run_judge() -> list[Verdict]:
        try:
            verdicts = list(judge.judge(items, arm_a=arm_a, arm_b=arm_b))
        except Exception as e:  # a judge that breaks its contract still does not lose the run
            return [
                Verdict.failed(it.id, f"judge raised {type(e).__name__}: {e}", "judge-error") for it in items
            ]
        if len(verdicts) != len(items):
            return [
                Verdict.failed(
                    it.id, f"judge returned {len(verdicts)} verdicts for {len(items)} items", "judge-error"
                )
                for it in items
            ]
        return verdicts

    verdicts: list[Verdict] = timed("judge", run_judge)
    wr = win_rate(
        verdicts,
        categories=[r["category"] for r in held],
        bootstrap_samples=cfg.bootstrap_samples,
        seed=cfg.bootstrap_seed,
        ci_level=cfg.ci_level,
        feedback_examples=cfg.feedback_examples,
        judge_name=judge.name,
    )
    timings["total"] = time.perf_counter() - t_start
    feedback = wr.feedback
    if loss_a is not None and loss_b is not None:
        feedback += f"\nheld-out loss (mean NLL per token, lower is better): candidate {loss_a:.3f}, baseline {loss_b:.3f}"
    result = EvalResult(
        **wr.model_dump(exclude={"feedback"}),
        feedback=feedback,
        ci_level=cfg.ci_level,
        candidate_heldout_loss=loss_a,
        baseline_heldout_loss=loss_b,
        timings={k: round(v, 3) for k, v in timings.items()},
        candidate=_arm_report(arm_a, len(cand_all), cand_train, cand_removed, cand_fp, loss_a),
        baseline=_arm_report(arm_b, base_given, base_train, base_removed, base_fp, loss_b),
        heldout=HeldoutReport(**held_report, fingerprint=held_fp),
        judge=judge.name,
        key=key,
        config=cfg.model_dump(mode="json"),
        verdicts=verdicts,
    )
    if judge_key is not None and result.failures == 0:
        atomic_write_json(result_path, result.model_dump(mode="json"))
    return result
