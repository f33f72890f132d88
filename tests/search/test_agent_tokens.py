"""The agent's prompt is measured in tokens (the model's tokenizer in process, an estimate for an
endpoint) and the history is summarised, oldest rounds first, until the prompt and the reply fit
the model's context; a prompt that cannot fit is a failure, never sent cut."""

from __future__ import annotations

import pytest

from autodp_search.agents import AgentContext, AgentFailure, CandidateView, LLMAgent, LLMConfig, RepairRequest
from autodp_search.agents.tokens import TokenBudget, estimate_tokens
from autodp_search.prompts import catalog_from_registry, search_messages
from stdlib_ops.backends import ScriptedBackend

from .helpers import dp

CATALOG = catalog_from_registry()
GOOD = dp("fine", "filter: words(output) >= 8")


@pytest.fixture(scope="module")
def tiny_tokenizer():
    """A real (Hugging Face) tokenizer with a 3-word vocabulary: one token per word or punctuation
    mark, so counts are easy to reason about and unlike a character count."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({"[UNK]": 0, "[PAD]": 1, "steps": 2}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]")


class TinyLocal(ScriptedBackend):
    """An in-process model as the agent sees it (kind ``local``: ``load``, ``render``, ``max_length``)
    with the tiny tokenizer; answers every prompt with ``GOOD`` and records the prompts."""

    kind = "local"

    def __init__(self, tok, max_length: int):
        super().__init__(lambda p: GOOD, memo=False)
        self.tok, self.max_length = tok, max_length

    def load(self):
        return None, self.tok

    def render(self, prompt) -> str:
        return "".join(f"<{m.role}> {m.content}\n" for m in prompt.messages) + "<assistant>"


def view(cid: str, rnd: int, delta: float) -> CandidateView:
    text = dp(cid, *[f"filter: words(output) >= {i + 2} and chars(output) <= {400 + i}" for i in range(6)])
    return CandidateView(rnd, cid, text, "ok", delta=delta, win_rate=0.5 + delta, ci_low=0.4, ci_high=0.6)


def context(history=()) -> AgentContext:
    return AgentContext(task="t", round=4, k=2, k_min=1, k_max=4, columns=(("output", "str"),),
                        profile_text="rows: 100", catalog=CATALOG, history=tuple(history))


# the best is in round 1: it stays in full while the other old candidates are summarised
HISTORY = [view("r1c1", 1, 0.2), view("r1c2", 1, 0.01), view("r1c3", 1, 0.02),
           view("r2c1", 2, 0.03), view("r2c2", 2, 0.04), view("r3c1", 3, -0.05), view("r3c2", 3, 0.05)]


def tokens_of(tok, backend, prompt) -> int:
    return len(tok(backend.render(prompt), add_special_tokens=False)["input_ids"])


def full_tokens(tok) -> int:
    probe = TinyLocal(tok, 10**6)
    LLMAgent(LLMConfig(model="local:smollm2"), backend=probe).propose(context(HISTORY))
    return max(tokens_of(tok, probe, p) for p in probe.calls)


def test_an_in_process_agent_counts_with_its_tokenizer_and_summarises_the_oldest_rounds_first(tiny_tokenizer):
    full = full_tokens(tiny_tokenizer)
    backend = TinyLocal(tiny_tokenizer, max_length=full + 600 - 150)  # 600 tokens kept for a .dp reply
    agent = LLMAgent(LLMConfig(model="local:smollm2"), backend=backend)
    props = agent.propose(context(HISTORY))
    assert [p.dp_text for p in props] == [GOOD, GOOD]
    sent = [tokens_of(tiny_tokenizer, backend, p) for p in backend.calls]
    assert len(sent) == 2 and max(sent) <= full - 150  # the reply's 600 tokens still fit
    text = backend.calls[0].last_user
    summary = text[text.index("older or weaker candidates, summarised"):text.index("### ")]
    assert "r1c2" in summary and "r1c3" in summary  # the oldest round went first ...
    assert "name: r1c1" in text and "Best so far: r1c1" in text  # ... but not the best
    assert "name: r3c2" in text and "name: r3c1" in text  # the latest round is shown in full
    assert len(agent.events) == 1
    ev = agent.events[0]
    assert "tokens" in ev and "the model's tokenizer" in ev and "--llm-context-tokens" in ev and f"took {full}" in ev


def test_the_context_given_overrides_the_backends_length(tiny_tokenizer):
    full = full_tokens(tiny_tokenizer)
    backend = TinyLocal(tiny_tokenizer, max_length=10**6)
    agent = LLMAgent(LLMConfig(model="local:smollm2", context_tokens=full + 600 - 150), backend=backend)
    agent.propose(context(HISTORY))
    assert max(tokens_of(tiny_tokenizer, backend, p) for p in backend.calls) <= full - 150
    assert agent.events and "tokens" in agent.events[0]


def test_a_prompt_that_cannot_fit_is_a_failure_and_is_not_sent(tiny_tokenizer):
    backend = TinyLocal(tiny_tokenizer, max_length=900)  # 300 tokens: not even the catalog fits
    agent = LLMAgent(LLMConfig(model="local:smollm2"), backend=backend)
    with pytest.raises(AgentFailure) as e:
        agent.propose(context(HISTORY))
    assert e.value.kind == "config" and "even with the history summarised" in str(e.value)
    assert "--llm-context-tokens" in str(e.value)
    assert backend.calls == []


def test_a_repair_that_would_not_fit_is_not_asked(tiny_tokenizer):
    full = full_tokens(tiny_tokenizer)
    backend = TinyLocal(tiny_tokenizer, max_length=full + 600)
    agent = LLMAgent(LLMConfig(model="local:smollm2"), backend=backend)
    huge = dp("huge", *[f"filter: words(output) >= {i}" for i in range(3000)])
    assert agent.repair(context(), RepairRequest(huge, ({"code": "x", "message": "y"},), 1)) is None
    assert backend.calls == [] and "repair attempt 1 was not asked" in agent.events[-1]
    assert agent.repair(context(), RepairRequest(dp("bad", "filter: nosuch(output) >= 1"), (), 1)).dp_text == GOOD


def test_an_endpoint_is_estimated_only_when_its_context_is_given():
    backend = ScriptedBackend(lambda p: '{"strategies": [{"rationale": "r", "strategy": ' + _json(GOOD) + "}]}")
    free = LLMAgent(LLMConfig(model="m", grammar="off"), backend=backend)
    assert free.token_budget(100) is None  # unknown context: only --llm-max-prompt-chars applies
    full = estimate_tokens(search_messages(context(HISTORY))) + 10
    agent = LLMAgent(LLMConfig(model="m", grammar="off", context_tokens=full + 4096 - 300), backend=backend)
    agent.propose(context(HISTORY))
    sent = backend.calls[-1].to_openai()
    assert estimate_tokens(sent) <= full - 300
    assert "an estimate of 1 token per 3 characters" in agent.events[0]


def test_the_estimate_over_counts_characters_by_a_third():
    msgs = [{"role": "system", "content": "x" * 30}, {"role": "user", "content": "y" * 31}]
    assert estimate_tokens(msgs) == 10 + 4 + 11 + 4
    assert estimate_tokens(msgs, chars_per_token=4.0) == 8 + 4 + 8 + 4
    b = TokenBudget(context=100, reply=60, count=lambda m: estimate_tokens(m), how="h")
    assert b.prompt_limit == 40 and b.fits(msgs) and not b.fits(msgs * 2)


def _json(text: str) -> str:
    import json

    import yaml

    return json.dumps(yaml.safe_load(text))


def test_the_context_is_an_option_of_the_search(capsys):
    import argparse

    from autodp_search.cli import build_config, register

    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    a = p.parse_args(["search", "d.jsonl", "--agent", "llm", "--llm-context-tokens", "4096"])
    assert build_config(a).llm.context_tokens == 4096
    assert build_config(p.parse_args(["search", "d.jsonl", "--agent", "llm"])).llm.context_tokens is None
    with pytest.raises(SystemExit) as e:
        p.parse_args(["search", "d.jsonl", "--llm-context-tokens", "100"])
    assert e.value.code == 2 and "at least 1024" in capsys.readouterr().err
