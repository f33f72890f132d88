"""Optimization: rewrite texts toward a stated goal with the model, keeping their facts.

Expensive (one LLM call per row): gate it with a ``where:`` block so it only touches the rows a
predicate selects, e.g. ``where: quality(instruction, output) < 0.5 do: [refine.rewrite(output)]``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from autodp_dsl.ir import Col
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import Arg, Cost, Family, FrameMapOp, Params
from autodp_dsl.types import STR

from ._llm import ModelOp, clean_reply, replace_replies, struct_udf, text_or_empty, truncate
from .backends.base import ChatPrompt, Sampling

__all__ = ["RefineRewrite", "REWRITE_SYSTEM", "REWRITE_PROMPT", "REWRITE_PROMPT_NO_CONTEXT", "OPS"]

REWRITE_PROMPT_VERSION = 1
REWRITE_SYSTEM = (
    "You improve texts of an instruction-tuning dataset. You keep every correct fact, fix errors and remove noise "
    "(markup, boilerplate, repetition), and never add claims the text does not support. You reply with the rewritten text only."
)
REWRITE_PROMPT = """Rewrite the {target} below so that it is {goal}.
Keep its meaning and all correct facts; do not add new claims. Reply with the rewritten {target} only.

{context_label} (context only, do not rewrite it):
{context}

{target_label} TO REWRITE:
{text}"""
REWRITE_PROMPT_NO_CONTEXT = """Rewrite the {target} below so that it is {goal}.
Keep its meaning and all correct facts; do not add new claims. Reply with the rewritten {target} only.

{target_label} TO REWRITE:
{text}"""


class RewriteParams(Params):
    goal: str = Field("accurate, complete, plain language", min_length=3, max_length=300)
    context: str = Field("instruction", max_length=200)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16, le=8192)
    max_chars: int = Field(6000, ge=100, le=100_000)


class RefineRewrite(ModelOp, FrameMapOp):
    """Rewrite a text column toward a stated goal with the model, keeping its facts (in place).

    ``refine.rewrite(text, goal=..., context="instruction")``: every non-empty value of ``text``
    is replaced by the model's rewrite under the versioned prompt ``REWRITE_PROMPT``, which states
    the ``goal`` and shows the ``context`` column's value of the same row (default: the
    instruction; ``context=""`` for none; name the answer column to rewrite instructions). The
    reply is cleaned (``clean_reply``: fences, a leading ``Rewritten answer:`` label and
    surrounding quotes go); an empty reply counts as malformed. Empty values are left alone;
    rows whose call failed keep their original text (counted as ``kept_original`` and, by kind,
    as failures). A map: never drops or adds rows.

    Example: ``where: quality(instruction, output) < 0.5 do: [refine.rewrite(output, goal="accurate, complete, plain language")]``;
    ``refine.rewrite(instruction, goal="one clear question", context="output")``.
    """

    name = "refine.rewrite"
    family = Family.OPTIMIZATION
    cost = Cost.LLM
    version = 1
    deterministic = True  # temperature 0 (the default)
    args = (Arg("text", STR, column=True),)
    Params = RewriteParams
    prompt_version = REWRITE_PROMPT_VERSION

    def lower(self, lf, args, params, ctx):
        if not isinstance(args[0], Col):
            raise ValueError("refine.rewrite: the argument must be a column")
        target = args[0].name
        names = lf.collect_schema().names()
        if params.context and params.context not in names:
            visible = ", ".join(n for n in names if not n.startswith("__"))
            raise ValueError(f"refine.rewrite: context column {params.context!r} does not exist; available columns: {visible} (or context=\"\" for none)")
        backend = self.backend(ctx)
        sampling = Sampling(temperature=params.temperature, max_tokens=params.max_tokens)
        tag = self.tag()
        limit = params.max_chars
        stats = backend.stats
        words = {"target": target.replace("_", " "), "target_label": target.upper(), "goal": params.goal}
        if params.context:
            words["context_label"] = params.context.upper()

        def rewrite(rows: list[tuple[Any, ...]]) -> list[Any]:
            out = [r[0] for r in rows]
            idx = [k for k, r in enumerate(rows) if r[0] is not None and str(r[0]).strip()]
            stats.add(tag, "skipped_empty", len(rows) - len(idx))
            if not idx:
                return out
            prompts = []
            for k in idx:
                text = truncate(str(rows[k][0]), limit)
                if params.context:
                    body = REWRITE_PROMPT.format(text=text, context=truncate(text_or_empty(rows[k][1]), limit), **words)
                else:
                    body = REWRITE_PROMPT_NO_CONTEXT.format(text=text, **words)
                prompts.append(ChatPrompt.user(body, system=REWRITE_SYSTEM))
            return replace_replies(out, idx, backend.generate(prompts, sampling, validate=clean_reply, tag=tag), stats, tag, "rewritten")

        inputs = [pl.col(target)] + ([pl.col(params.context)] if params.context else [])
        return lf.with_columns(struct_udf(inputs, rewrite, pl.String).alias(target))


OPS = (RefineRewrite,)
