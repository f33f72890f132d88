"""Judges: one protocol, three implementations. A judge never raises for a single item.

* :class:`LikelihoodJudge` (offline, no LLM): per question, the arm that gives the reference answer
  the lower mean negative log-likelihood per token wins.
* :class:`PairwiseLLMJudge`: an LLM behind an OpenAI-compatible endpoint (or an in-process vLLM
  engine) compares the two answers, asked in both orders to cancel position bias.
* :class:`ScriptedJudge`: a rule written in Python, for tests.

Arm "a" is the candidate and arm "b" the baseline in :func:`autodp_eval.evaluate`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from autodp_backends.errors import BackendError, TransientError
from autodp_backends.openai_client import openai_client, request_error
from autodp_backends.records import fields_dict
from autodp_backends.retry import backoff_delay

from ._config import EvalConfig, JudgeConfig, canonical_hash, llm_verdict_settings

if TYPE_CHECKING:  # pragma: no cover
    from ._arm import TrainedArm

__all__ = [
    "JUDGE_PROMPT_VERSION",
    "Judge",
    "JudgeItem",
    "LikelihoodJudge",
    "PairwiseLLMJudge",
    "ScriptedJudge",
    "Verdict",
    "judge_from_config",
    "parse_judge_reply",
]

Winner = Literal["a", "b", "tie", "failed"]


class JudgeItem(BaseModel):
    """One held-out question with the reference answer and the two arms' answers."""

    id: str
    question: str
    reference: str | None = None
    answer_a: str | None = None
    answer_b: str | None = None
    category: str | None = None


class Verdict(BaseModel):
    """The outcome for one question: ``winner`` is "a", "b", "tie", or "failed" (with ``error``)."""

    id: str
    winner: Winner
    rationale: str = ""
    error: str | None = None
    error_kind: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def failed(cls, id: str, error: str, kind: str = "error", **details: Any) -> Verdict:  # noqa: A002
        return cls(id=id, winner="failed", error=error, error_kind=kind, details=details)


@runtime_checkable
class Judge(Protocol):
    """Compares arm "a" with arm "b" on each item; returns one verdict per item, in order.

    ``needs_answers``: whether the items must carry generated answers. ``cache_key()`` identifies the
    judge's behaviour for memoisation (None: never memoise its verdicts). ``judge`` must not raise for a
    single failed item: it returns ``Verdict.failed(...)`` with the error text instead.
    """

    name: str
    needs_answers: bool

    def cache_key(self) -> str | None: ...

    def judge(
        self, items: Sequence[JudgeItem], *, arm_a: TrainedArm | None = None, arm_b: TrainedArm | None = None
    ) -> list[Verdict]: ...


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# --------------------------------------------------------------------------- likelihood


class LikelihoodJudge:
    """Offline judge: which arm gives the reference answer the higher likelihood, per question.

    For each held-out question it computes the mean negative log-likelihood per token of the
    reference answer (truncated as in training) under each arm; the lower one wins, and a difference
    of at most ``tie_margin`` nats is a tie. Arms on different bases (different tokenizers) are
    compared per character instead of per token (arms that share a tokenizer but not a seed: per token).

    It measures how well each arm has learned the distribution of good answers; it does not read
    the generated answers, so it says nothing about fluency, factual correctness beyond the
    reference, format, or length of what the model actually writes. It is symmetric and has no
    position bias, so one order suffices.
    """

    name = "likelihood"
    needs_answers = False

    def __init__(
        self,
        config: EvalConfig | None = None,
        *,
        cache_dir: str | Path | None = None,
        tie_margin: float | None = None,
    ):
        self.config = config or EvalConfig()
        self.cache_dir = cache_dir
        self.tie_margin = self.config.judge.tie_margin if tie_margin is None else tie_margin

    def cache_key(self) -> str:
        return canonical_hash({"judge": "likelihood", "tie_margin": self.tie_margin})

    def judge(
        self, items: Sequence[JudgeItem], *, arm_a: TrainedArm | None = None, arm_b: TrainedArm | None = None
    ) -> list[Verdict]:
        if arm_a is None or arm_b is None:
            return [
                Verdict.failed(it.id, "the likelihood judge needs both trained arms", "no-arms")
                for it in items
            ]
        from ._score import score_references

        scored = [it for it in items if it.reference]
        rows = [{"instruction": it.question, "input": "", "output": it.reference} for it in scored]
        try:
            sa = score_references(arm_a, rows, self.config, cache_dir=self.cache_dir) if rows else []
            sb = score_references(arm_b, rows, self.config, cache_dir=self.cache_dir) if rows else []
        except Exception as e:  # a broken arm fails every item, with the reason
            return [Verdict.failed(it.id, f"scoring failed: {_short(e)}", "scoring") for it in items]
        # per token when both arms share a tokenizer (arms of one comparison do, whatever their seeds)
        tok_a = arm_a.tokenizer_fingerprint or arm_a.base_fingerprint
        tok_b = arm_b.tokenizer_fingerprint or arm_b.base_fingerprint
        unit = "token" if tok_a == tok_b else "char"
        by_id = {}
        for it, a, b in zip(scored, sa, sb, strict=True):
            la, lb = (a.per_token, b.per_token) if unit == "token" else (a.per_char, b.per_char)
            diff = lb - la
            winner: Winner = "tie" if abs(diff) <= self.tie_margin else ("a" if diff > 0 else "b")
            by_id[it.id] = Verdict(
                id=it.id,
                winner=winner,
                rationale=f"reference answer NLL per {unit}: a {la:.3f}, b {lb:.3f}",
                details={"nll_a": la, "nll_b": lb, "unit": unit},
            )
        return [
            by_id.get(it.id) or Verdict.failed(it.id, "no reference answer", "no-reference") for it in items
        ]


# --------------------------------------------------------------------------- scripted


class ScriptedJudge:
    """A judge whose verdicts come from Python: for tests and dry runs.

    ``rule`` is a callable ``(JudgeItem) -> "a" | "b" | "tie" | "failed" | Verdict``, or a sequence
    of such strings used in item order. A rule that raises gives a failed verdict with the error text.
    """

    def __init__(
        self,
        rule: Callable[[JudgeItem], str | Verdict] | Sequence[str],
        *,
        name: str = "scripted",
        needs_answers: bool = True,
        key: str | None = None,
    ):
        self.rule = rule
        self.name = name
        self.needs_answers = needs_answers
        self._key = key

    def cache_key(self) -> str | None:
        return self._key

    def judge(
        self, items: Sequence[JudgeItem], *, arm_a: TrainedArm | None = None, arm_b: TrainedArm | None = None
    ) -> list[Verdict]:
        out = []
        for i, it in enumerate(items):
            try:
                r = self.rule[i] if isinstance(self.rule, Sequence) else self.rule(it)
                if isinstance(r, Verdict):
                    out.append(r.model_copy(update={"id": it.id}))
                elif r in ("a", "b", "tie"):
                    out.append(Verdict(id=it.id, winner=r, rationale=f"scripted: {r}"))
                elif r in ("failed", "fail"):
                    out.append(Verdict.failed(it.id, "scripted failure", "scripted"))
                else:
                    out.append(Verdict.failed(it.id, f"scripted rule returned {r!r}", "scripted"))
            except Exception as e:
                out.append(Verdict.failed(it.id, _short(e), "error"))
        return out


# --------------------------------------------------------------------------- pairwise LLM

JUDGE_PROMPT_VERSION = "1"
JUDGE_SYSTEM = (
    "You are an impartial judge. You compare two answers to the same question and decide which one "
    "is better: more correct, more complete, more relevant and clearer. Do not let the order of the "
    "answers or their length alone sway you. Reply with JSON only."
)
JUDGE_TEMPLATE = """[Question]
{question}
{reference_block}
[Answer 1]
{first}

[Answer 2]
{second}

Which answer is better? Reply with a JSON object only, like {{"rationale": "<one or two sentences>", "winner": "1"}}, where winner is "1", "2" or "tie"."""
REFERENCE_BLOCK = "\n[Reference answer (a correct answer, for guidance)]\n{reference}\n"


def judge_messages(
    question: str, first: str, second: str, reference: str | None = None
) -> list[dict[str, str]]:
    """The chat messages of one pairwise comparison (answer 1 is shown first)."""
    ref = REFERENCE_BLOCK.format(reference=reference) if reference else ""
    user = JUDGE_TEMPLATE.format(
        question=question,
        reference_block=ref,
        first=first or "(empty answer)",
        second=second or "(empty answer)",
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


class JudgeReplyError(ValueError):
    """A judge reply that names no winner."""


_WINNER_RE = re.compile(r"""["']?winner["']?\s*[:=]\s*["']?\s*(answer\s*)?(1|2|tie)\b""", re.IGNORECASE)


def parse_judge_reply(text: str | None) -> tuple[str, str]:
    """``(winner, rationale)`` from a judge reply; winner is "1", "2" or "tie".

    Accepts a JSON object (possibly inside a code fence or surrounded by prose); falls back to a
    ``winner: N`` pattern. Raises :class:`JudgeReplyError` when no winner can be read.
    """
    if not text or not text.strip():
        raise JudgeReplyError("empty judge reply")
    candidates = [text.strip()]
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    for c in candidates:
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict) and "winner" in obj:
            w = str(obj["winner"]).strip().lower().removeprefix("answer").strip()
            if w in ("1", "2", "tie"):
                return w, str(obj.get("rationale", "")).strip()
            raise JudgeReplyError(f"judge reply names an unknown winner {obj['winner']!r}")
    m = _WINNER_RE.search(text)
    if m:
        return m.group(2).lower(), text.strip()[:500]
    raise JudgeReplyError(f"no winner in judge reply: {text.strip()[:120]!r}")


class _Failure(Exception):
    def __init__(self, kind: str, message: str, attempts: int):
        super().__init__(message)
        self.kind, self.message, self.attempts = kind, message, attempts


def _classify(e: BaseException, timeout: float) -> tuple[str, bool, float | None]:
    """(error kind, retryable, the server's Retry-After) of a failed judge request. Retrying follows
    ``autodp_backends``' one policy (timeouts, connection errors, 408, 429, 5xx); the kinds keep the
    judge's spelling, which verdicts report (docs/eval.md): ``http-<status>`` when the server
    answered, else ``timeout``, ``connection``, ``unparseable`` or ``error``."""
    if isinstance(e, JudgeReplyError):
        return "unparseable", True, None
    err = request_error(e, timeout)
    if err is None:
        return "error", False, None
    kind = f"http-{err.status}" if err.status is not None else getattr(err, "kind", "error")
    return kind, isinstance(err, TransientError), getattr(err, "retry_after", None)


class PairwiseLLMJudge:
    """An LLM compares the two answers, in both orders, through an OpenAI-compatible API or vLLM.

    Each question is asked twice (answer "a" shown first, then answer "b" first) unless
    ``both_orders=False``. Each order gives +1 to the arm it prefers, 0 for a tie; the arm with the
    higher sum wins and equal sums are a tie, so a judge that always prefers the first position
    yields ties, never wins. Both rationales are kept.

    Requests that fail (connection errors, timeouts, HTTP 408/429/5xx, replies without a winner)
    are retried ``max_retries`` times with ``autodp_backends``' backoff (exponential, jittered, a
    server's Retry-After honoured up to ``backoff_max_s``); a question with an order that still
    fails gets a failed verdict with the error text. Other HTTP errors (e.g. 401, 404) fail at once.
    """

    needs_answers = True

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        backend: Literal["openai", "vllm"] = "openai",
        api_key_env: str = "OPENAI_API_KEY",
        both_orders: bool = True,
        use_reference: bool = True,
        temperature: float = 0.0,
        max_tokens: int = 512,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
        timeout_s: float = 60.0,
        concurrency: int = 4,
        client: Any = None,
        engine: Any = None,
    ):
        self.model = model
        self.base_url = base_url
        self.backend = backend
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.both_orders = both_orders
        self.use_reference = use_reference
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self._client = client
        self._engine = engine
        self.name = f"pairwise:{model}"

    @classmethod
    def from_config(cls, jc: JudgeConfig, **kwargs: Any) -> PairwiseLLMJudge:
        assert jc.model is not None
        return cls(
            jc.model,
            jc.base_url,
            backend="vllm" if jc.kind == "vllm" else "openai",
            # the judge's settings are the config's fields of the same names
            **fields_dict(jc, "api_key_env", "both_orders", "use_reference", "temperature", "max_tokens",
                          "max_retries", "backoff_s", "backoff_max_s", "timeout_s", "concurrency"),
            **kwargs,
        )

    def cache_key(self) -> str:
        return canonical_hash(
            {
                "judge": "pairwise",
                "backend": self.backend,
                **llm_verdict_settings(self),
                "prompt": JUDGE_PROMPT_VERSION,
            }
        )

    # -- transport

    def _openai_client(self) -> Any:
        if self._client is None:
            try:
                self._client = openai_client(self.base_url, self.api_key or "EMPTY", self.timeout_s)
            except BackendError as e:
                raise _Failure("backend-unavailable", str(e), 0) from None
        return self._client

    def _ask_openai(self, messages: list[dict[str, str]]) -> tuple[str, str, int]:
        """(winner "1"/"2"/"tie", rationale, attempts), or raises _Failure after the retries."""
        attempt = 0
        while True:
            attempt += 1
            try:
                client = self._openai_client()
                resp = client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                )
                text = resp.choices[0].message.content if resp.choices else None
                w, why = parse_judge_reply(text)
                return w, why, attempt
            except _Failure:
                raise
            except Exception as e:
                kind, retryable, retry_after = _classify(e, self.timeout_s)
                if not retryable or attempt > self.max_retries:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise _Failure(kind, f"{kind}{tries}: {_short(e)}", attempt) from None
                time.sleep(backoff_delay(attempt, self.backoff_s, self.backoff_max_s, retry_after))

    def _ask_vllm(self, conversations: list[list[dict[str, str]]]) -> list[tuple[str, str, int] | _Failure]:
        try:
            if self._engine is None:
                from ._generate import vllm_engine

                self._engine = vllm_engine(self.model)
            from vllm import SamplingParams

            params = SamplingParams(temperature=self.temperature, max_tokens=self.max_tokens)
            outs = self._engine.chat(conversations, params, use_tqdm=False)
        except Exception as e:
            return [_Failure("backend", f"vLLM judge failed: {_short(e)}", 1)] * len(conversations)
        results: list[tuple[str, str, int] | _Failure] = []
        for o in outs:
            try:
                w, why = parse_judge_reply(o.outputs[0].text)
                results.append((w, why, 1))
            except JudgeReplyError as e:
                results.append(_Failure("unparseable", f"unparseable: {e}", 1))
        return results

    # -- judging

    def judge(
        self, items: Sequence[JudgeItem], *, arm_a: TrainedArm | None = None, arm_b: TrainedArm | None = None
    ) -> list[Verdict]:
        orders = ("ab", "ba") if self.both_orders else ("ab",)
        jobs: list[tuple[int, str, list[dict[str, str]]]] = []
        for i, it in enumerate(items):
            ref = it.reference if self.use_reference else None
            for order in orders:
                first, second = (it.answer_a, it.answer_b) if order == "ab" else (it.answer_b, it.answer_a)
                jobs.append((i, order, judge_messages(it.question, first or "", second or "", ref)))
        results: list[tuple[str, str, int] | _Failure]
        if self.backend == "vllm":
            results = self._ask_vllm([m for _, _, m in jobs])
        else:

            def run(job: tuple[int, str, list[dict[str, str]]]) -> tuple[str, str, int] | _Failure:
                try:
                    return self._ask_openai(job[2])
                except _Failure as f:
                    return f
                except Exception as e:  # never let one item take the batch down
                    return _Failure("error", _short(e), 1)

            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                results = list(pool.map(run, jobs))
        per_item: dict[int, dict[str, tuple[str, str, int] | _Failure]] = {}
        for (i, order, _), res in zip(jobs, results, strict=True):
            per_item.setdefault(i, {})[order] = res
        return [self._combine(it, per_item.get(i, {}), orders) for i, it in enumerate(items)]

    @staticmethod
    def _combine(item: JudgeItem, res: dict[str, Any], orders: Sequence[str]) -> Verdict:
        failures = [(o, r) for o, r in res.items() if isinstance(r, _Failure)]
        attempts = {o: (r.attempts if isinstance(r, _Failure) else r[2]) for o, r in res.items()}
        if failures:
            label = {"ab": "a shown first", "ba": "b shown first"}
            msg = "; ".join(f"{label[o]}: {r.message}" for o, r in failures)
            return Verdict.failed(item.id, msg, failures[0][1].kind, attempts=attempts)
        points = 0
        raw = {}
        rationales = []
        for o in orders:
            w, why, _ = res[o]
            # map the position the judge chose back to the arm
            arm = "tie" if w == "tie" else ({"1": "a", "2": "b"}[w] if o == "ab" else {"1": "b", "2": "a"}[w])
            raw[o] = arm
            points += {"a": 1, "b": -1, "tie": 0}[arm]
            rationales.append(f"[{'a' if o == 'ab' else 'b'} first -> {arm}] {why}".strip())
        winner: Winner = "a" if points > 0 else "b" if points < 0 else "tie"
        return Verdict(
            id=item.id,
            winner=winner,
            rationale=" | ".join(rationales),
            details={"orders": raw, "attempts": attempts, "position_consistent": len(set(raw.values())) == 1},
        )


def judge_from_config(config: EvalConfig, *, cache_dir: str | Path | None = None) -> Judge:
    """The judge that ``config.judge`` describes."""
    jc = config.judge
    if jc.kind == "likelihood":
        return LikelihoodJudge(config, cache_dir=cache_dir)
    return PairwiseLLMJudge.from_config(jc)
