"""The built-in agents: real search moves, deterministic, valid, novel; the LLM reply parser."""

from __future__ import annotations

import pytest

from autodp_dsl import compile_text
from autodp_dsl.types import parse_type
from autodp_search.agents import AgentContext, CandidateRecord, EvolutionaryAgent, RandomAgent, parse_reply
from autodp_search.agents._ir_tools import canonical_key
from autodp_search.prompts import catalog_from_registry, catalog_text, history_text

COLUMNS = (("id", "str"), ("instruction", "str"), ("input", "str"), ("output", "str"), ("lowq", "float"))
STATS = (
    (
        "words",
        "output",
        (
            ("p1", 2.0),
            ("p5", 8.0),
            ("p25", 40.0),
            ("p50", 90.0),
            ("p75", 160.0),
            ("p95", 400.0),
            ("p99", 900.0),
        ),
    ),
    ("special_char_ratio", "output", (("p5", 0.1), ("p50", 0.2), ("p95", 0.3))),
)


def ctx(round_=1, history=(), k=4, seed=0) -> AgentContext:
    return AgentContext(
        task="t",
        round=round_,
        k=k,
        k_min=1,
        k_max=8,
        columns=COLUMNS,
        profile_text="rows: 100",
        catalog=catalog_from_registry(),
        signal_stats=STATS,
        history=tuple(history),
        seed=seed,
        target_column="lowq",
    )


def _compiles(text: str) -> bool:
    return compile_text(text, columns={n: parse_type(t) for n, t in COLUMNS}).ok


def _scored_history(agent, rounds=1):
    """Round-1 proposals scored by a fixed rule (fewer steps better), as the loop would record them."""
    hist = []
    c = ctx(1)
    props = agent.propose(c)
    for i, p in enumerate(props, 1):
        delta = 0.1 - 0.02 * i
        hist.append(
            CandidateRecord(
                1,
                f"r1c{i}",
                p.dp_text,
                "ok",
                key=canonical_key(p.dp_text, c),
                delta=delta,
                win_rate=0.5 + delta,
                ci_low=0.4,
                ci_high=0.7,
            )
        )
    return hist


def test_seed_round_is_valid_and_deterministic():
    a1 = EvolutionaryAgent(seed=3, strategies_dir=None).propose(ctx())
    a2 = EvolutionaryAgent(seed=3, strategies_dir=None).propose(ctx())
    assert [p.dp_text for p in a1] == [p.dp_text for p in a2]
    assert len(a1) == 4
    assert all(_compiles(p.dp_text) for p in a1)
    keys = {canonical_key(p.dp_text, ctx()) for p in a1}
    assert len(keys) == 4  # all different after canonicalisation
    other = EvolutionaryAgent(seed=4, strategies_dir=None).propose(ctx())
    assert [p.dp_text for p in other] != [p.dp_text for p in a1]


def test_later_rounds_mutate_and_recombine_the_best_and_stay_novel():
    agent = EvolutionaryAgent(seed=0, strategies_dir=None)
    hist = _scored_history(agent)
    seen = {h.key for h in hist}
    origins = set()
    for r in range(2, 6):
        c = ctx(r, hist, k=6)
        props = agent.propose(c)
        assert props, "the proposer ran dry"
        for i, p in enumerate(props, 1):
            assert _compiles(p.dp_text), p.dp_text
            k = canonical_key(p.dp_text, c)
            assert k not in seen, "a proposal repeats an earlier candidate"
            seen.add(k)
            origins.add(p.origin.split(":")[0])
            hist.append(
                CandidateRecord(r, f"r{r}c{i}", p.dp_text, "ok", key=k, delta=-0.01 * i, win_rate=0.5)
            )
    assert "mutate" in origins
    assert origins & {"recombine", "explore"}


def test_threshold_mutation_moves_to_signal_quantiles():
    agent = EvolutionaryAgent(seed=1, strategies_dir=None)
    text = "dp: 1\nname: a\nsteps:\n  - filter: words(output) >= 8\n"
    c0 = ctx()
    hist = [CandidateRecord(1, "r1c1", text, "ok", key=canonical_key(text, c0), delta=0.2, win_rate=0.7)]
    import random

    from autodp_search.agents._ir_tools import parse_strategy

    s = parse_strategy(text, c0)
    values = set()
    for i in range(30):
        steps = agent._m_threshold(random.Random(i), ctx(2, hist), [], list(s.steps))
        values.add(steps[0].predicate.right.value)
    # neighbouring quantiles (2, 40) or halfway to them (5, 24); never out of the data's range
    assert values <= {2, 40, 5, 24}
    assert len(values) >= 2


def test_param_mutation_respects_declared_ranges():
    import random

    agent = EvolutionaryAgent(seed=0, strategies_dir=None)
    c = ctx()
    cat = {o.name: o for o in c.catalog}
    with_params = [
        o for o in c.catalog if o.params and o.kind in ("map", "global") and o.cost == "vectorised"
    ]
    if not with_params:
        pytest.skip("no parameterised step operator in the catalog")
    for op in with_params:
        text = f"dp: 1\nname: a\nsteps:\n  - {op.name}(output)\n"
        from autodp_search.agents._ir_tools import parse_strategy

        s = parse_strategy(text, c)
        if s is None:
            continue
        for i in range(10):
            steps = agent._m_param(random.Random(i), c, [], list(s.steps))
            if steps is None:
                continue
            from autodp_dsl import strategy_to_text
            from autodp_dsl.ir import Strategy

            out = strategy_to_text(Strategy(name="m", steps=tuple(steps)))
            assert _compiles(out), (op.name, out)
    assert cat  # catalog generated from the registry


def test_random_agent_ignores_history_but_avoids_repeats():
    ag = RandomAgent(seed=0)
    props = ag.propose(ctx(1))
    assert len(props) == 4 and all(_compiles(p.dp_text) for p in props)
    assert all(p.origin == "random" for p in props)


def test_catalog_and_history_text_are_group_relative():
    c = ctx()
    text = catalog_text(c.catalog)
    assert "dedup.exact" in text and "words(" in text
    hist = [
        CandidateRecord(
            1, "r1c1", "dp: 1\nname: a\nsteps: []\n", "ok", delta=0.2, win_rate=0.7, ci_low=0.6, ci_high=0.8
        ),
        CandidateRecord(
            1, "r1c2", "dp: 1\nname: b\nsteps: []\n", "ok", delta=-0.1, win_rate=0.4, ci_low=0.3, ci_high=0.5
        ),
    ]
    h = history_text(ctx(2, hist))
    assert h.index("r1c2") < h.index("r1c1")  # best last
    assert "score - r0 = +0.200" in h and "score - r0 = -0.100" in h


def test_parse_reply_is_lenient():
    s = {"dp": 1, "name": "x", "steps": ["clean.whitespace(output)", {"filter": "words(output) >= 3"}]}
    import json

    structured = json.dumps({"strategies": [{"rationale": "r", "strategy": s}]})
    assert _compiles(parse_reply(structured)[0].dp_text)
    prose = "Sure! Here you go:\n```json\n" + structured + "\n```\nGood luck."
    assert _compiles(parse_reply(prose)[0].dp_text)
    yaml_block = "Try this:\n```yaml\ndp: 1\nname: y\nsteps:\n  - dedup.exact(output)\n```\n"
    p = parse_reply(yaml_block)
    assert len(p) == 1 and _compiles(p[0].dp_text)
    assert parse_reply("no idea") == []


def test_the_default_curated_strategies_are_the_package_data_copy_of_strategies():
    """The offline proposer seeds from strategies/ as shipped inside autodp_search (package data,
    found with importlib.resources), not from a path relative to the checkout; both are the same files."""
    from pathlib import Path

    from autodp_search.agents.offline import _default_strategies_dir, load_curated

    top = Path(__file__).resolve().parents[2] / "strategies"
    shipped = load_curated(_default_strategies_dir())
    assert shipped and shipped == load_curated(top)
    assert EvolutionaryAgent().strategies_dir is not None
