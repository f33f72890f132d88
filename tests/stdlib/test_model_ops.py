"""Model-backed operators against the scripted backend: exact outputs, failures, memo, row accounting."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from autodp_dsl.ir import Assign, BinOp, Call, Col, Filter, Lit, OpStep, Strategy, Where
from autodp_dsl.lower import Context, lower_strategy
from autodp_dsl.ops import ROW_ID, registry
from stdlib_ops.backends import ChatPrompt, ScriptedBackend, TransientError, UnsupportedError
from stdlib_ops.generation import FILL_SYSTEM, ORIGIN, SYNTH_SYSTEM, synthetic_row_id
from stdlib_ops.optimization import REWRITE_SYSTEM
from stdlib_ops.scoring import QUALITY_SYSTEM

ROWS = {
    "instruction": [
        "What is the boiling point of water at sea level?",
        "Name a primary color.",
        "Explain photosynthesis briefly.",
        "",
    ],
    "output": [
        "100 degrees Celsius.",
        "bad answer lorem ipsum",
        "",
        "Paris is the capital of France.",
    ],
}


def frame() -> pl.LazyFrame:
    return pl.LazyFrame(ROWS)


def section(text: str, label: str) -> str:
    """The block of a prompt that follows ``LABEL...:`` up to the next blank line."""
    start = text.index(label)
    body = text[text.index("\n", start) + 1 :]
    return body.split("\n\n", 1)[0]


def judge(prompt: ChatPrompt) -> str:
    resp = section(prompt.last_user, "RESPONSE:")
    if "bad" in resp:
        return '{"score": 2}'
    if resp.startswith("100"):
        return "Score: 9/10"
    if resp.startswith("Paris"):
        return '```json\n{"score": "7"}\n```'
    return "I cannot rate an empty response."  # malformed: no number


def script(prompt: ChatPrompt) -> str:
    system = prompt.messages[0].content
    if system == QUALITY_SYSTEM:
        return judge(prompt)
    if system == REWRITE_SYSTEM:
        text = section(prompt.last_user, "TO REWRITE:")
        return f"Rewritten answer: {text.replace('bad answer lorem ipsum', 'Red is a primary color.')}"
    if system == FILL_SYSTEM:
        if "ANSWER:" in prompt.last_user:
            return "What is the capital of France?"
        return "Plants turn light, water and CO2 into sugar and oxygen."
    if system == SYNTH_SYSTEM:
        out = section(prompt.last_user, "ANSWER:")
        if out.startswith("100"):
            return json.dumps({"pairs": [{"instruction": "At what temperature does water boil?", "output": "At 100 °C at sea level."},
                                         {"instruction": "Is 100 °C the boiling point of water?", "output": "Yes, at sea level."}]})
        if out.startswith("Paris"):
            return json.dumps({"pairs": [{"question": "Which city is France's capital?", "answer": "Paris."}]})
        return "no JSON here"
    raise AssertionError(f"unexpected prompt: {prompt}")


def quality_call(method: str = "llm") -> Call:
    params = (("method", method),) if method != "llm" else ()
    return Call("quality", (Col("instruction"), Col("output")), params)


def run(steps, backend, *, keep_internal=False, lf=None) -> pl.DataFrame:
    strategy = Strategy("t", tuple(steps))
    ctx = Context(registry(), services={"model_backend": backend})
    return lower_strategy(strategy, lf if lf is not None else frame(), ctx, keep_internal=keep_internal).collect()


def test_quality_llm_exact_scores_and_null_on_malformed():
    b = ScriptedBackend(script, malformed_retries=2)
    out = run([Assign("q", quality_call())], b)
    assert out["q"].to_list() == [8 / 9, 1 / 9, None, 6 / 9]
    snap = b.stats.snapshot()
    assert snap["failures"] == {"malformed": 1}
    assert snap["by_tag"]["quality/p1"]["rows"] == 4
    assert snap["requests"] == 3 + 3  # three good rows once, the malformed one 1 + 2 retries
    assert snap["retries"] == 2
    assert snap["failed_rows"] == 1
    assert snap["errors"][0]["kind"] == "malformed"


def test_gated_rewrite_touches_only_selected_rows():
    b = ScriptedBackend(script)
    gate = BinOp("<", quality_call(), Lit(0.5))
    out = run([Where(gate, (OpStep("refine.rewrite", (Col("output"),), (("goal", "accurate, complete, plain language"),)),))], b)
    assert out.columns == ["instruction", "output"]
    assert out["output"].to_list() == ["100 degrees Celsius.", "Red is a primary color.", "", "Paris is the capital of France."]
    rewrites = [p for p in b.calls if p.messages[0].content == REWRITE_SYSTEM]
    assert len(rewrites) == 1
    # the gate's signal runs once per row although both branches of the where block read it
    assert len([p for p in b.calls if p.messages[0].content == QUALITY_SYSTEM]) == 4 + 2
    text = rewrites[0].last_user
    assert "so that it is accurate, complete, plain language." in text
    assert "INSTRUCTION (context only, do not rewrite it):\nName a primary color." in text
    assert "OUTPUT TO REWRITE:\nbad answer lorem ipsum" in text
    assert b.stats.get("rewritten", "refine.rewrite/p1") == 1


def test_rewrite_failure_keeps_original_and_is_counted():
    def flaky(prompt):
        if prompt.messages[0].content == REWRITE_SYSTEM and "Paris" in prompt.last_user:
            raise TransientError("server", "HTTP 503")
        return "Improved."

    b = ScriptedBackend(flaky, max_retries=2)
    out = run([OpStep("refine.rewrite", (Col("output"),), (("context", ""),))], b, keep_internal=True)
    assert out["output"].to_list() == ["Improved.", "Improved.", "", "Paris is the capital of France."]
    assert out[ROW_ID].to_list() == [0, 1, 2, 3]
    tag = "refine.rewrite/p1"
    assert b.stats.failures(tag) == {"server": 1}
    assert b.stats.get("kept_original", tag) == 1
    assert b.stats.get("skipped_empty", tag) == 1
    assert b.stats.get("requests", tag) == 2 + 3  # two good rows, the failing one 1 + 2 retries
    assert all("INSTRUCTION" not in p.last_user for p in b.calls)  # context="" shows no context


def test_rewrite_unknown_context_column_is_a_clear_error():
    b = ScriptedBackend(script)
    with pytest.raises(ValueError, match="context column 'question' does not exist; available columns: instruction, output"):
        run([OpStep("refine.rewrite", (Col("output"),), (("context", "question"),))], b)


def test_gen_fill_fills_only_empty_values():
    b = ScriptedBackend(script)
    out = run([OpStep("gen.fill", (Col("output"), Col("instruction"))), OpStep("gen.fill", (Col("instruction"), Col("output")))], b)
    assert out["output"].to_list() == [
        "100 degrees Celsius.",
        "bad answer lorem ipsum",
        "Plants turn light, water and CO2 into sugar and oxygen.",
        "Paris is the capital of France.",
    ]
    assert out["instruction"].to_list()[3] == "What is the capital of France?"
    assert out["instruction"].to_list()[:3] == ROWS["instruction"][:3]
    assert len(b.calls) == 2
    assert "INSTRUCTION:\nExplain photosynthesis briefly." in b.calls[0].last_user or "INSTRUCTION:\nExplain photosynthesis briefly." in b.calls[1].last_user


def test_gen_fill_role_must_be_known():
    b = ScriptedBackend(script)
    lf = pl.LazyFrame({"text": ["", "x"], "title": ["t", "u"]})
    with pytest.raises(ValueError, match="cannot tell whether column 'text'"):
        run([OpStep("gen.fill", (Col("text"), Col("title")))], b, lf=lf)
    out = run([OpStep("gen.fill", (Col("text"), Col("title")), (("role", "answer"),))], b, lf=lf)
    assert out["text"].to_list() == ["Plants turn light, water and CO2 into sugar and oxygen.", "x"]


def test_gen_synthesize_adds_rows_with_derived_ids():
    b = ScriptedBackend(script, malformed_retries=1)
    out = run([OpStep("gen.synthesize", (Col("instruction"), Col("output")), (("n_per_row", 2),))], b, keep_internal=True)
    assert out.height == 4 + 3
    assert out[ROW_ID].to_list() == [0, 1, 2, 3, 2**62, 2**62 + 1, 2**62 + 3 * 16]
    assert out[ORIGIN].to_list() == [None, None, None, None, 0, 0, 3]
    assert out["instruction"].to_list()[4:] == ["At what temperature does water boil?", "Is 100 °C the boiling point of water?", "Which city is France's capital?"]
    assert out["output"].to_list()[4:] == ["At 100 °C at sea level.", "Yes, at sea level.", "Paris."]
    assert out["instruction"].to_list()[:4] == ROWS["instruction"]
    tag = "gen.synthesize/p1"
    assert b.stats.get("added_rows", tag) == 3
    assert b.stats.get("short", tag) == 1  # row 3 gave one pair of two
    assert b.stats.get("skipped", tag) == 1  # row 2 has no output
    assert b.stats.failures(tag) == {"malformed": 1}  # row 1
    assert synthetic_row_id(3, 0) == 2**62 + 48


def test_gen_synthesize_inside_where_and_without_internal_columns():
    b = ScriptedBackend(script)
    gate = BinOp(">=", quality_call(), Lit(0.6))
    out = run([Where(gate, (OpStep("gen.synthesize", (Col("instruction"), Col("output"))),))], b, keep_internal=True)
    # rows 0 (8/9) and 3 (6/9) pass the gate; one pair each (n_per_row=1)
    assert out[ROW_ID].to_list() == [0, 1, 2, 3, 2**62, 2**62 + 48]
    assert out[ORIGIN].to_list() == [None, None, None, None, 0, 3]
    plain = run([Where(gate, (OpStep("gen.synthesize", (Col("instruction"), Col("output"))),))], b)
    assert plain.columns == ["instruction", "output"] and plain.height == 6


def test_ifd_from_scripted_scorer():
    def scorer(item):
        n = len(item.completion.split())
        return (-1.0 * n, n) if item.context is not None else (-2.0 * n, n)

    b = ScriptedBackend(script, scorer=scorer)
    strategy = Strategy("t", (Assign("d", Call("ifd", (Col("instruction"), Col("output")))),))
    ctx = Context(registry(), services={"score_backend": b})
    out = lower_strategy(strategy, frame(), ctx).collect()
    assert out["d"].to_list() == [0.5, 0.5, None, 0.5]
    assert b.stats.get("rows", "ifd/p1") == 8


def test_ifd_with_a_backend_that_cannot_score_says_so():

    b = ScriptedBackend(script)  # no scorer
    strategy = Strategy("t", (Assign("d", Call("ifd", (Col("instruction"), Col("output")))),))
    with pytest.raises(UnsupportedError, match="cannot score log-likelihoods.*local:smollm2"):
        lower_strategy(strategy, frame(), Context(registry(), services={"model_backend": b, "score_backend": b}))


def test_memo_shared_across_strategies_and_backend_instances(tmp_path):

    b1 = ScriptedBackend(script, memo=tmp_path / "memo")
    run([Assign("q", quality_call())], b1)
    assert b1.stats.get("cache_hits") == 0
    # a different strategy (a filter on the same signal) with a fresh backend of the same model
    b2 = ScriptedBackend(script, memo=tmp_path / "memo")
    out = run([Filter(BinOp(">=", quality_call(), Lit(0.5)))], b2)
    assert out["output"].to_list() == ["100 degrees Celsius.", "Paris is the capital of France."]
    assert b2.stats.get("cache_hits") == 3  # the malformed row was not memoised: asked again
    assert len([p for p in b2.calls if p.messages[0].content == QUALITY_SYSTEM]) == 3  # 1 + 2 retries


def test_heuristic_quality_exact_values():

    lf = pl.LazyFrame({
        "instruction": ["q", "Say hi", "q", "q", None],
        "output": ["the cat the cat", " say HI ", "", "<<<>>>", "a b"],
    })
    b = ScriptedBackend(script)
    out = run([Assign("h", quality_call("heuristic"))], b, lf=lf)
    expected_0 = math.log(5) / math.log(51) * (0.5 + 0.5 * 2 / 4) * 1.0
    expected_4 = math.log(3) / math.log(51) * 1.0 * 1.0
    got = out["h"].to_list()
    assert got[0] == pytest.approx(expected_0, abs=1e-12)
    assert got[1:4] == [0.0, 0.0, 0.0]
    assert got[4] == pytest.approx(expected_4, abs=1e-12)
    assert b.calls == []  # no model involved


def test_model_ops_declarations():
    reg = registry()
    for name, cost in [("quality", "llm"), ("ifd", "model"), ("gen.fill", "llm"), ("gen.synthesize", "llm"), ("refine.rewrite", "llm"), ("novelty", "model")]:
        op = reg.get(name)
        assert op is not None, name
        assert op.cost == cost
        assert op.summary() and not op.summary().endswith(",")
        assert "Example" in op.doc()
        assert op.deterministic
        assert op().is_deterministic(op.Params())
    with pytest.raises(ValueError):
        reg.get("gen.synthesize").Params(n_per_row=17)
    with pytest.raises(ValueError):
        reg.get("quality").Params(method="guess")
    assert not reg.get("quality")().is_deterministic(reg.get("quality").Params(temperature=0.7))


def test_statistic_spec_includes_backend_identity():

    a = ScriptedBackend(script, name="judge-a")
    b = ScriptedBackend(script, name="judge-b")
    cols = []
    for backend in (a, b):
        strategy = Strategy("t", (Assign("q", quality_call()),))
        lf = lower_strategy(strategy, frame(), Context(registry(), services={"model_backend": backend}), keep_internal=True)
        cols.append([c for c in lf.collect_schema().names() if c.startswith("__stat_quality")])
    assert cols[0] and cols[1] and cols[0] != cols[1]


def test_novelty_with_a_scripted_embedder():
    from stdlib_ops.backends.embed import Embedder

    vectors = {"a": [1.0, 0.0], "a twin": [1.0, 0.0], "b": [0.0, 1.0], "ab": [1.0, 1.0]}
    emb = Embedder(lambda texts: [vectors[t] for t in texts], memo=False, name="toy")
    lf = pl.LazyFrame({"t": ["a", "a twin", "b", None, "ab", " "]})
    strategy = Strategy("t", (Assign("n", Call("novelty", (Col("t"),), (("k", 1),))),))
    out = lower_strategy(strategy, lf, Context(registry(), services={"embedder": emb})).collect()
    s = 1 / math.sqrt(2)
    assert out["n"].to_list() == pytest.approx([0.0, 0.0, 1 - s, None, 1 - s, None], abs=1e-6, nan_ok=False)
    assert out["n"].to_list()[3] is None and out["n"].to_list()[5] is None


def test_model_ops_through_the_executor_with_row_accounting():
    executor = pytest.importorskip("autodp_dsl.engine.executor")
    from autodp_dsl import compile_text

    src = """dp: 1
name: t
steps:
  - gen.fill(output, instruction)
  - where: quality(instruction, output) < 0.5
    do:
      - refine.rewrite(output, goal="accurate, complete, plain language")
  - where: quality(instruction, output) >= 0.6
    do:
      - gen.synthesize(instruction, output, n_per_row=2)
"""
    compiled = compile_text(src)
    assert compiled.ok, compiled.diagnostics
    b = ScriptedBackend(script)
    res = executor.Executor(services={"model_backend": b}).run(compiled.strategy, pl.DataFrame(ROWS))
    acc = res.accounting
    assert (acc.rows_in, acc.kept, acc.dropped, acc.generated) == (4, 7, 0, 3)
    assert res.ids.to_list() == [0, 1, 2, 3, 2**62, 2**62 + 1, 2**62 + 48]
    assert res.frame["output"].to_list()[:4] == [
        "100 degrees Celsius.",
        "Red is a primary color.",
        "Plants turn light, water and CO2 into sugar and oxygen.",
        "Paris is the capital of France.",
    ]
