"""The grammar that constrains an agent's decoding covers the whole operator catalog, and what it
accepts is a strategy the agent path accepts."""

from __future__ import annotations

import lark
import pytest

from autodp_dsl import compile_text
from autodp_dsl.types import parse_type
from autodp_search.agents.grammar import dp_grammar
from autodp_search.boundary import agent_diagnostics, param_catalog
from autodp_search.prompts import catalog_from_registry

COLUMNS = [("instruction", "str"), ("input", "str"), ("output", "str"), ("lowq", "float")]
CATALOG = catalog_from_registry()


@pytest.fixture(scope="module")
def parser():
    return lark.Lark(dp_grammar(CATALOG, COLUMNS), start="start", parser="earley")


def _value(p: dict) -> str | None:
    if p["name"] == "fraction":  # selection steps need a size: fraction or k (a value rule the lint checks)
        return "0.5"
    if p["name"] == "k" and p.get("default") == 0:
        return None
    if "choices" in p:
        return f'"{p["choices"][-1]}"'
    if p["type"] == "bool":
        return "false" if p.get("default") else "true"
    if p["type"] in ("int", "float"):
        v = p.get("default", 1)
        for bound in ("ge", "gt"):
            if bound in p and (v is None or v < p[bound] or (bound == "gt" and v == p[bound])):
                v = p[bound] + (1 if bound == "gt" else 0)
        v = int(v) if p["type"] == "int" else float(v)
        return str(v)
    return None


def example(o) -> str:
    """A step using operator ``o`` with every argument and every parameter the grammar allows."""
    args = []
    for a in o.args:
        args.append("lowq" if a["type"] != "str" else "output")
    if len(o.args) == 2 and all(a["type"] == "str" for a in o.args):
        args = ["instruction", "output"]
    params = [f"{p['name']}={v}" for p in o.params if (v := _value(p)) is not None]
    if not args:
        params = params[:1]
    call = f"{o.name}({', '.join(args + params)})"
    if o.kind == "signal":
        return f"filter: {call}" if o.returns == "bool" else f"filter: {call} >= 0"
    return call


@pytest.mark.parametrize("op", CATALOG, ids=lambda o: o.name)
def test_every_operator_is_in_the_grammar_with_all_its_typed_parameters(op, parser):
    text = f"dp: 1\nname: cover\nsteps:\n  - {example(op)}\n"
    parser.parse(text)  # the grammar accepts it
    res = compile_text(text, columns={n: parse_type(t) for n, t in COLUMNS})
    assert res.ok, [d.message for d in res.diagnostics]
    assert not agent_diagnostics(res.strategy, param_catalog(CATALOG), 30)  # and the agent path does too


def test_the_grammar_names_real_columns_only_and_refuses_what_the_agent_path_refuses(parser):
    ok = ("dp: 1\nname: a-b\nsteps:\n  - clean.html(output)\n  - filter: words(output) >= 8 and not heading_only(output)\n"
          "  - where: lowq > 0.5\n    do:\n      - refine.rewrite(output)\n      - filter: chars(output) < 4000\n")
    parser.parse(ok)
    for bad in (
        "dp: 1\nname: a\nsteps:\n  - clean.html(secret_column)\n",  # not a column
        "dp: 1\nname: a\nsteps:\n  - no.such_op(output)\n",  # not an operator
        'dp: 1\nname: a\nsteps:\n  - filter: output >= "SECRET-5"\n',  # a string literal
        'dp: 1\nname: a\nsteps:\n  - clean.boilerplate_lines(output, patterns=["x"])\n',  # a regex
        "dp: 1\nname: a\nsteps:\n  - where: lowq > 0.5\n    do:\n      - dedup.exact(output)\n",  # global in where
        "dp: 1\nname: a\nsteps:\n  - select.top(lowq)\n",  # a selection without its size
        "dp: 1\nname: a\nsteps:\n  - select.sample(fraction=0.0)\n",  # a size of 0
    ):
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(bad)


def test_llguidance_compiles_the_grammar():
    llguidance = pytest.importorskip("llguidance")
    g = llguidance.LLMatcher.grammar_from_lark(dp_grammar(CATALOG, COLUMNS))
    assert llguidance.LLMatcher.validate_grammar(g) == ""


def test_an_openai_compatible_server_gets_the_grammar_and_its_documents_are_parsed():
    """``grammar="on"`` with a server (vLLM's structured outputs): one request per proposal, each
    carrying the grammar; the replies are .dp documents."""
    from autodp_search.agents import AgentContext, LLMAgent, LLMConfig
    from stdlib_ops.backends.testing import FakeOpenAIServer

    doc = "dp: 1\nname: a\nsteps:\n  - filter: words(output) >= 8\n"
    with FakeOpenAIServer(lambda req: doc.replace("8", str(5 + req.index))) as srv:
        agent = LLMAgent(LLMConfig(base_url=srv.base_url, model="fake-model", grammar="on", max_retries=0))
        ctx = AgentContext(task="t", round=1, k=3, k_min=1, k_max=8, columns=tuple(COLUMNS), profile_text="rows: 100",
                           catalog=CATALOG)
        props = agent.propose(ctx)
        bodies = [r.body for r in srv.chat_requests]
    assert len(props) == 3 and len({p.dp_text for p in props}) == 3
    assert all(b["structured_outputs"]["grammar"] == dp_grammar(CATALOG, COLUMNS) for b in bodies)
    assert all("response_format" not in b for b in bodies)


def test_a_random_local_model_decodes_only_documents_of_the_grammar(tmp_path):
    """The local backend's llguidance mask on a tiny random Llama: whatever the weights, every
    sampled text is a document of the grammar, which the DSL parses."""
    pytest.importorskip("llguidance")
    pytest.importorskip("transformers")
    from stdlib_ops.backends import ChatPrompt, Sampling, TransformersBackend
    from tests.stdlib.test_model_local import build_tiny_llama

    path = build_tiny_llama(tmp_path / "tiny")
    grammar = dp_grammar(CATALOG, COLUMNS, max_steps=1, max_inner=1)
    backend = TransformersBackend(str(path), memo=False, batch_size=2)
    prompts = [ChatPrompt.user(f"Write strategy {i}.") for i in range(2)]
    results = backend.generate(prompts, Sampling(temperature=1.0, max_tokens=300, seed=1, grammar=grammar), tag="t")
    parser = lark.Lark(grammar, start="start", parser="earley")
    for r in results:
        assert r.ok, r.error
        parser.parse(r.text + "\n" if not r.text.endswith("\n") else r.text)
        res = compile_text(r.text, columns={n: parse_type(t) for n, t in COLUMNS})
        assert not any(d.code in ("yaml-syntax", "syntax-error") for d in res.diagnostics), res.diagnostics


def test_the_xgrammar_translation_accepts_what_lark_accepts():
    """bench/bench_grammar_engines.py compares engines on the same grammar: xgrammar gets the Lark
    grammar translated to its EBNF, which accepts every operator's example and refuses the rest."""
    xgr = pytest.importorskip("xgrammar")
    import importlib.util
    import sys
    from pathlib import Path

    from xgrammar.testing import _is_grammar_accept_string as accepts

    bench = Path(__file__).resolve().parents[2] / "bench"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("bench_grammar_engines", bench / "bench_grammar_engines.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(bench))
    g = xgr.Grammar.from_ebnf(mod.lark_to_ebnf(dp_grammar(CATALOG, COLUMNS)))
    for op in CATALOG:
        assert accepts(g, f"dp: 1\nname: cover\nsteps:\n  - {example(op)}\n"), op.name
    assert accepts(g, "dp: 1\nname: a-b\nsteps:\n  - filter: words(output) >= 8.25 and not heading_only(output)\n"
                      "  - where: lowq > 0.5\n    do:\n      - refine.rewrite(output)\n")
    for bad in ("dp: 1\nname: a\nsteps:\n  - clean.html(secret_column)\n",
                'dp: 1\nname: a\nsteps:\n  - filter: output >= "SECRET-5"\n',
                "dp: 1\nname: a\nsteps:\n  - filter: words(output) >= 8.2555\n",  # 3 decimals at most
                "dp: 1\nname: a\nsteps:\n  - select.sample(fraction=0.0)\n"):
        assert not accepts(g, bad), bad


def test_llguidance_decodes_every_operators_example_and_a_second_column(tmp_path):
    """llguidance's lexer looks one byte ahead: a separator ``"," " "`` beside a parameter literal
    ``", name="`` made a second column unreachable (``clean.whitespace(instruction, output)``),
    which Lark's and xgrammar's parsers accept. Every document fed token by token must be accepted."""
    pytest.importorskip("llguidance")
    pytest.importorskip("transformers")
    import llguidance
    import llguidance.hf
    from transformers import AutoTokenizer

    from tests.stdlib.test_model_local import build_tiny_llama

    tok = AutoTokenizer.from_pretrained(build_tiny_llama(tmp_path / "tiny"))
    lltok = llguidance.hf.from_tokenizer(tok)
    grammar = llguidance.LLMatcher.grammar_from_lark(dp_grammar(CATALOG, COLUMNS))
    steps = [example(o) for o in CATALOG] + [
        "clean.whitespace(instruction, output)", "clean.whitespace(instruction, input, output, max_blank_lines=2)",
        "dedup.exact(instruction, output, lowercase=true)", "clean.links(input, output)"]
    for step in steps:
        doc = f"dp: 1\nname: cover\nsteps:\n  - {step}\n"
        m = llguidance.LLMatcher(lltok, grammar, log_level=0)
        for t in tok(doc, add_special_tokens=False)["input_ids"]:
            assert m.consume_token(t), (step, m.get_error()[:300])
        assert m.is_accepting(), step
