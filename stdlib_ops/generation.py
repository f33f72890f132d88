"""Generation: fill missing instructions or answers, synthesise new instruction-answer pairs.

Both call the run's model backend (``model_backend``) when the plan is collected; replies are
memoised per row on disk. A row whose call fails keeps its original value (and is counted in the
backend's stats under the op's tag); no row is ever dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from autodp_backends.errors import MalformedOutput
from autodp_dsl.ir import Col
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import ROW_ID, Arg, Cost, Family, GenerateOp, Params
from autodp_dsl.types import STR

from ._llm import ModelOp, clean_reply, parse_json, replace_replies, struct_udf, text_or_empty, truncate
from .backends.base import ChatPrompt, Sampling

__all__ = ["GenFill", "GenSynthesize", "synthetic_row_id", "SYNTH_BASE", "ORIGIN", "OPS"]

SYNTH_BASE = 2**62  # synthesised rows have ids >= this; input rows are below 2**58
ORIGIN = "__origin"  # column of synthesised rows: the parent's row id (null for other rows)
MAX_CHILDREN = 16

# ---------------------------------------------------------------- gen.fill

FILL_PROMPT_VERSION = 1
FILL_SYSTEM = "You write data for instruction tuning: clear, correct and self-contained. You reply with the requested text only."
FILL_ANSWER_PROMPT = """Write a helpful, accurate and complete answer to the following instruction.
Reply with the answer only.

INSTRUCTION:
{source}"""
FILL_INSTRUCTION_PROMPT = """Write the instruction or question that the following answer responds to.
Reply with the instruction only.

ANSWER:
{source}"""

_INSTRUCTION_NAMES = {"instruction", "question", "prompt", "input", "query"}
_ANSWER_NAMES = {"output", "answer", "response", "completion"}


class FillParams(Params):
    role: Literal["auto", "answer", "instruction"] = "auto"
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1, le=8192)
    max_chars: int = Field(4000, ge=100, le=100_000)


def _is_empty(v: Any) -> bool:
    return v is None or not str(v).strip()


class GenFill(ModelOp, GenerateOp):
    """Fill an empty or missing instruction or answer from the other column with the model.

    ``gen.fill(target, source)``: in every row where ``target`` is null, empty or only whitespace
    and ``source`` is not, ``target`` becomes the model's reply to the versioned prompt: an answer
    to the instruction (``role="answer"``) or the instruction an answer responds to
    (``role="instruction"``). ``role="auto"`` (default) decides from the target column's name (``output``,
    ``answer``, ``response``, ``completion`` -> answer; ``instruction``, ``question``, ``prompt``,
    ``input``, ``query`` -> instruction; other names must say it). Other rows are untouched; rows
    whose call failed keep their empty value (counted in the stats as ``failed_rows``).

    Example: ``gen.fill(output, instruction)``; ``gen.fill(question, answer)``;
    ``gen.fill(text, title, role="answer")``.
    """

    name = "gen.fill"
    family = Family.GENERATION
    cost = Cost.LLM
    version = 1
    deterministic = True  # temperature 0 (the default)
    args = (Arg("target", STR, column=True), Arg("source", STR))
    Params = FillParams
    prompt_version = FILL_PROMPT_VERSION

    def written_columns(self, columns, params):
        return columns[:1]

    @staticmethod
    def role_of(target: str, params: FillParams) -> str:
        if params.role != "auto":
            return params.role
        low = target.lower()
        if low in _ANSWER_NAMES:
            return "answer"
        if low in _INSTRUCTION_NAMES:
            return "instruction"
        raise ValueError(f"gen.fill cannot tell whether column {target!r} holds instructions or answers; pass role=\"answer\" or role=\"instruction\"")

    def lower(self, lf, args, params, ctx):
        target = args[0].name if isinstance(args[0], Col) else None
        if target is None:
            raise ValueError("gen.fill: the first argument must be a column")
        role = self.role_of(target, params)
        template = FILL_ANSWER_PROMPT if role == "answer" else FILL_INSTRUCTION_PROMPT
        backend = self.backend(ctx)
        sampling = Sampling(temperature=params.temperature, max_tokens=params.max_tokens)
        tag = self.tag()
        limit = params.max_chars
        stats = backend.stats

        def fill(rows: list[tuple[Any, Any]]) -> list[Any]:
            out = [t for t, _ in rows]
            idx = [k for k, (t, s) in enumerate(rows) if _is_empty(t) and not _is_empty(s)]
            stats.add(tag, "skipped_no_source", sum(1 for t, s in rows if _is_empty(t) and _is_empty(s)))
            if not idx:
                return out
            prompts = [ChatPrompt.user(template.format(source=truncate(text_or_empty(rows[k][1]), limit)), system=FILL_SYSTEM) for k in idx]
            return replace_replies(out, idx, backend.generate(prompts, sampling, validate=clean_reply, tag=tag), stats, tag, "filled")

        return lf.with_columns(struct_udf([pl.col(target), ctx.expr(args[1])], fill, pl.String).alias(target))


# ---------------------------------------------------------------- gen.synthesize

SYNTH_PROMPT_VERSION = 1
SYNTH_SYSTEM = "You write data for instruction tuning: clear, correct and self-contained. You answer with JSON only."
SYNTH_PROMPT = """Below is an instruction and its answer from a dataset. Write {n} new, different instruction-answer
pair(s) on the same topic. Each pair must be self-contained, and its answer must only use facts stated
in the text below.

INSTRUCTION:
{instruction}

ANSWER:
{output}

Reply with JSON only, in the form {{"pairs": [{{"instruction": "...", "output": "..."}}]}} with {n} pair(s)."""


def synth_schema(n: int) -> dict[str, Any]:
    pair = {
        "type": "object",
        "properties": {"instruction": {"type": "string", "minLength": 1}, "output": {"type": "string", "minLength": 1}},
        "required": ["instruction", "output"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": n}},
        "required": ["pairs"],
        "additionalProperties": False,
    }


def parse_pairs(text: str, n: int) -> list[tuple[str, str]]:
    """The first ``n`` valid pairs of a reply: ``{"pairs": [...]}`` or a bare list of objects with
    ``instruction``/``output`` (or ``question``/``answer``) strings. Raises ``MalformedOutput`` when
    there is no valid pair."""
    obj = parse_json(text)
    items = obj.get("pairs") if isinstance(obj, dict) else obj
    if isinstance(obj, dict) and items is None and ("instruction" in obj or "question" in obj):
        items = [obj]
    if not isinstance(items, list):
        raise MalformedOutput("expected {\"pairs\": [...]}")
    pairs: list[tuple[str, str]] = []
    for it in items:
        if not isinstance(it, dict):
            continue
        q = it.get("instruction", it.get("question"))
        a = it.get("output", it.get("answer"))
        if isinstance(q, str) and isinstance(a, str) and q.strip() and a.strip():
            pairs.append((q.strip(), a.strip()))
        if len(pairs) == n:
            break
    if not pairs:
        raise MalformedOutput("no pair with a non-empty instruction and output")
    return pairs


def synthetic_row_id(parent: int, k: int) -> int:
    """The row id of the ``k``-th pair synthesised from row ``parent``: ``2**62 + parent * 16 + k``."""
    if not 0 <= k < MAX_CHILDREN:
        raise ValueError(f"k must be in 0..{MAX_CHILDREN - 1}")
    if not 0 <= parent < 2**58:
        raise ValueError("only input rows (ids below 2**58) can be parents")
    return SYNTH_BASE + parent * MAX_CHILDREN + k


class SynthParams(Params):
    n_per_row: int = Field(1, ge=1, le=MAX_CHILDREN)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16, le=8192)
    max_chars: int = Field(4000, ge=100, le=100_000)


class GenSynthesize(ModelOp, GenerateOp):
    """Synthesise up to ``n_per_row`` new instruction-answer pairs from each row's pair; adds rows.

    ``gen.synthesize(instruction, output, n_per_row=1)``: for every input row with a non-empty
    ``output``, the model is asked (one call, versioned prompt, JSON reply
    ``{"pairs": [{"instruction", "output"}]}``) for ``n_per_row`` new pairs on the same topic using
    only facts of that row. Each valid pair becomes a new row: a copy of the parent's other
    columns with the new ``instruction`` and ``output``, row id ``2**62 + parent_id * 16 + k``
    (k = 0.. in reply order; deterministic) and ``__origin`` = the parent's id (null on other rows).
    Original rows are kept unchanged. Rows that are themselves synthetic are not used as parents.
    A reply with fewer valid pairs adds fewer rows (``short`` in the stats); a failed or malformed
    reply adds none (``failed_rows``). Use inside ``where:`` to pick the parents.

    Example: ``where: quality(instruction, output) >= 0.8 do: [gen.synthesize(instruction, output, n_per_row=2)]``.
    """

    name = "gen.synthesize"
    family = Family.GENERATION
    cost = Cost.LLM
    version = 1
    deterministic = True  # temperature 0 (the default)
    args = (Arg("instruction", STR, column=True), Arg("output", STR, column=True))
    Params = SynthParams
    prompt_version = SYNTH_PROMPT_VERSION

    def written_columns(self, columns, params):
        return []

    def lower(self, lf, args, params, ctx):
        if not all(isinstance(a, Col) for a in args):
            raise ValueError("gen.synthesize: both arguments must be columns")
        q_col, a_col = args[0].name, args[1].name
        backend = self.backend(ctx)
        n = params.n_per_row
        sampling = Sampling(temperature=params.temperature, max_tokens=params.max_tokens, json_schema=synth_schema(n), schema_name="pairs")
        tag = self.tag()
        limit = params.max_chars
        stats = backend.stats
        schema = lf.collect_schema()
        out_schema = dict(schema)
        out_schema[ROW_ID] = pl.UInt64  # synthetic ids need 64 bits
        out_schema.setdefault(ORIGIN, pl.UInt64)

        def synthesize(df: pl.DataFrame) -> pl.DataFrame:
            df = df.with_columns(pl.col(ROW_ID).cast(pl.UInt64))
            if ORIGIN not in df.columns:
                df = df.with_columns(pl.lit(None, dtype=pl.UInt64).alias(ORIGIN))
            ids = df.get_column(ROW_ID).to_list()
            qs, outs = df.get_column(q_col).to_list(), df.get_column(a_col).to_list()
            parents = [k for k in range(df.height) if ids[k] is not None and ids[k] < 2**58 and not _is_empty(outs[k])]
            stats.add(tag, "skipped", df.height - len(parents))
            if not parents:
                return df
            prompts = [
                ChatPrompt.user(SYNTH_PROMPT.format(n=n, instruction=truncate(text_or_empty(qs[k]), limit), output=truncate(text_or_empty(outs[k]), limit)), system=SYNTH_SYSTEM)
                for k in parents
            ]
            results = backend.generate(prompts, sampling, validate=lambda t: parse_pairs(t, n), tag=tag)
            take, new_q, new_a, new_id, origin = [], [], [], [], []
            for k, r in zip(parents, results, strict=True):
                if not r.ok:
                    continue
                if len(r.value) < n:
                    stats.add(tag, "short")
                for j, (q, a) in enumerate(r.value):
                    take.append(k)
                    new_q.append(q)
                    new_a.append(a)
                    new_id.append(synthetic_row_id(ids[k], j))
                    origin.append(ids[k])
            stats.add(tag, "added_rows", len(take))
            if not take:
                return df
            children = df[take].with_columns(
                pl.Series(q_col, new_q, dtype=pl.String),
                pl.Series(a_col, new_a, dtype=pl.String),
                pl.Series(ROW_ID, new_id, dtype=pl.UInt64),
                pl.Series(ORIGIN, origin, dtype=pl.UInt64),
            )
            return pl.concat([df, children.select(df.columns)])

        return lf.map_batches(synthesize, schema=out_schema)


OPS = (GenFill, GenSynthesize)
