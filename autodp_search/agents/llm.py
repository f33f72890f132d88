"""LLM agents through the model-backend layer the operators use (``stdlib_ops.backends``).

``LLMAgent`` sends its chat messages through one ``ModelBackend``: an OpenAI-compatible server
(``openai:MODEL@URL``, or a bare model name plus ``base_url``), an in-process model
(``local:smollm2``, ``local:/path``) or vLLM (``vllm:MODEL``). The backend brings the timeouts,
the bounded retries with backoff on transient errors (5xx, 429, refused connections, timeouts),
the malformed-reply retries and the failure counters; this module adds what is particular to the
agent:

- structured output with the .dp document's JSON Schema wrapped in a list, falling back once to a
  plain request plus a lenient parse (JSON anywhere in the reply, or ```yaml blocks) when the
  server refuses ``response_format``;
- a reply size limit (``max_reply_chars``): a larger reply is malformed, never parsed or sent back;
- prompt size limits: ``max_prompt_chars`` characters, and the model's context in tokens (counted
  with the model's tokenizer in process, estimated for an endpoint with ``context_tokens`` set; see
  ``agents.tokens``): the history is summarised, oldest rounds first, until the prompt fits; a
  prompt that still does not fit the context is a failure, never sent cut;
- a deadline (``set_deadline``): each request's timeout is bounded by the time left to the search,
  so ``--max-time`` holds while a server hangs;
- ``preflight()``: one tiny request before the search spends anything, naming the endpoint when it
  fails.

A request that still fails after its retries raises ``AgentFailure`` (the search ends cleanly with
exit code 4, see ``autodp_search.loop``); a proposal reply without a strategy after the retries is a
failure too, a repair reply without one gives the repair up. ``AutoMLAgent`` is the comparison
baseline in the style of AutoML-agents: the same backend, but prompts with absolute scores only, no
group comparison and no catalog documentation.

Prompts are built from the ``AgentContext`` only (see ``autodp_search.prompts``), which the privacy
boundary (``autodp_search.boundary``) builds from aggregates.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import yaml

from .. import prompts
from .base import AgentContext, AgentFailure, Proposal, RepairRequest

__all__ = ["LLMAgent", "AutoMLAgent", "LLMConfig", "parse_reply", "response_schema"]

_SPEC_KINDS = ("openai:", "local:", "vllm:", "scripted")
_DP_REPLY_TOKENS = 600  # one constrained .dp document: 4 steps of the grammar fit in well under 600 tokens


@dataclass
class LLMConfig:
    """How the LLM agent reaches its model.

    ``model`` is a model name served at ``base_url`` (an OpenAI-compatible endpoint; without one,
    OpenAI itself) or a backend spec: ``openai:MODEL@URL``, ``local:smollm2``, ``vllm:MODEL``.
    ``timeout_s`` bounds each request (and the time left to the search bounds it further);
    ``max_retries`` retries transient failures, ``malformed_retries`` replies without a strategy.
    ``context_tokens``: the model's context window (in-process models: the backend's ``max_length``
    by default; endpoints: unknown unless given, and then counted with ``chars_per_token``).
    """

    base_url: str | None = None
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.7
    max_tokens: int = 4096
    timeout_s: float = 60.0
    max_retries: int = 2
    malformed_retries: int = 1
    structured: str = "auto"  # "auto" (try, fall back), "on", "off"
    max_reply_chars: int = 100_000
    max_prompt_chars: int = 60_000
    context_tokens: int | None = None
    chars_per_token: float = 3.0  # the estimate for an endpoint's tokenizer (agents.tokens.estimate_tokens)
    backoff_s: float = 0.5  # first backoff between retries (doubles each time)
    grammar: str = "auto"  # constrained decoding with the .dp grammar: "auto" (in-process models), "on", "off"
    grammar_field: str = "structured_outputs"  # how an OpenAI-compatible server gets it (vLLM; see OpenAIBackend)

    def backend_spec(self) -> dict[str, Any]:
        """The ``stdlib_ops.backends.from_config`` dict of this configuration (no memo: an agent
        samples afresh; the search journal keeps its replies)."""
        from stdlib_ops.backends import parse_spec

        if self.model.startswith(_SPEC_KINDS):
            conf = parse_spec(self.model)
        else:
            conf = {"kind": "openai", "model": self.model}
        if conf["kind"] == "openai":
            if self.base_url and "base_url" not in conf:
                conf["base_url"] = self.base_url
            conf.setdefault("api_key_env", self.api_key_env)
            conf.setdefault("timeout", self.timeout_s)
            conf.setdefault("structured", "none" if self.structured == "off" else "json_schema")
            if self.grammar == "on":
                conf.setdefault("grammar_field", self.grammar_field)
        if conf["kind"] == "local":
            # the backend truncates longer prompts (2048 tokens by default): an agent's prompt is
            # 3-6K tokens, which SmolLM2 (8K context) reads whole
            conf.setdefault("max_length", 8192)
        conf.update(memo=False, max_retries=self.max_retries, malformed_retries=self.malformed_retries,
                    concurrency=1, backoff_base=self.backoff_s)
        return conf


def response_schema() -> dict[str, Any]:
    from autodp_dsl import json_schema

    doc = json_schema()
    defs = doc.pop("$defs", {})
    doc.pop("$schema", None)
    doc.pop("$id", None)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["strategies"],
        "properties": {
            "strategies": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["rationale", "strategy"],
                    "properties": {"rationale": {"type": "string"}, "strategy": doc},
                },
            }
        },
        "$defs": defs,
    }


def _doc_to_text(doc: Any) -> str | None:
    if isinstance(doc, str):
        return doc if "steps" in doc else None
    if not isinstance(doc, dict) or "steps" not in doc:
        return None
    doc = {"dp": doc.get("dp", 1), **{k: v for k, v in doc.items() if k != "dp"}}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)


def _json_candidates(text: str):
    """JSON values found in ``text``: the whole text, fenced blocks, then the outermost braces."""
    yield text
    for m in re.finditer(r"```(?:json)?\s*\n(.*?)```", text, re.S):
        yield m.group(1)
    i, j = text.find("{"), text.rfind("}")
    if 0 <= i < j:
        yield text[i : j + 1]


def parse_reply(text: str) -> list[Proposal]:
    """Proposals from a model reply, leniently: structured JSON, JSON in prose, or YAML blocks."""
    text = text or ""
    for cand in _json_candidates(text):
        try:
            data = json.loads(cand)
        except (json.JSONDecodeError, ValueError):
            continue
        items: list[Any]
        if isinstance(data, dict) and "strategies" in data:
            items = data["strategies"] if isinstance(data["strategies"], list) else []
        elif isinstance(data, list):
            items = data
        else:
            items = [data]
        out = []
        for it in items:
            if isinstance(it, dict) and "strategy" in it:
                t = _doc_to_text(it["strategy"])
                why = str(it.get("rationale", ""))
            else:
                t, why = _doc_to_text(it), ""
            if t:
                out.append(Proposal(t, why[:500], "llm"))
        if out:
            return out
    out = []
    for m in re.finditer(r"```(?:ya?ml|dp)?\s*\n(.*?)```", text, re.S):
        body = m.group(1)
        if "steps" in body:
            out.append(Proposal(body, "", "llm"))
    if not out and "steps:" in text:
        out.append(Proposal(text, "", "llm"))
    return out


class LLMAgent:
    name = "llm"

    def __init__(self, config: LLMConfig | None = None, backend: Any = None):
        self.config = config or LLMConfig()
        self._backend = backend
        self._structured_ok: bool | None = None if self.config.structured == "auto" else self.config.structured == "on"
        self.requests = 0
        self.deadline: float | None = None  # time.monotonic() by which the search must stop
        self.events: list[str] = []  # limits that bit and fallbacks taken, for the journal and the report

    @property
    def backend(self):
        """The model backend, built on first use (``stdlib_ops.backends.from_config``)."""
        if self._backend is None:
            from stdlib_ops.backends import BackendError, from_config

            try:
                self._backend = from_config(self.config.backend_spec())
            except BackendError as e:
                raise AgentFailure(f"the LLM agent cannot be set up: {e}", "config") from e
        return self._backend

    def describe(self) -> str:
        try:
            return self.backend.describe()
        except AgentFailure:
            return self.config.model

    def set_deadline(self, deadline: float | None) -> None:
        self.deadline = deadline

    def stats(self) -> dict[str, Any]:
        """The backend's counters (requests, retries, failures by kind) for the report."""
        if self._backend is None:
            return {}
        snap = self._backend.stats.snapshot()
        snap.pop("by_tag", None)
        return {"backend": self._backend.describe(), **snap}

    # ---- requests

    def _timeout(self) -> float | None:
        """Each request's timeout: the configured one, bounded by the time left to the search
        shared among the attempts the backend may make."""
        if self.deadline is None:
            return self.config.timeout_s
        left = self.deadline - time.monotonic()
        if left <= 0.5:
            raise AgentFailure("no time left for an agent call (--max-time)", "budget")
        return max(0.5, min(self.config.timeout_s, left / (1 + self.config.max_retries)))

    def _request(self, messages: list[dict[str, str]], validate, tag: str, max_tokens: int | None = None,
                 structured: bool = True):
        """One chat completion through the backend; the failure after retries raises AgentFailure."""
        from stdlib_ops.backends import BackendError, ChatPrompt, Message, Sampling

        backend = self.backend
        timeout = self._timeout()
        if timeout is not None and hasattr(backend, "timeout"):
            backend.timeout = timeout
        schema = response_schema() if structured and self._structured_ok is not False else None
        sampling = Sampling(temperature=self.config.temperature, max_tokens=max_tokens or self.config.max_tokens,
                            seed=self.requests, json_schema=schema, schema_name="strategies")
        prompt = ChatPrompt(tuple(Message(m["role"], m["content"]) for m in messages))
        self.requests += 1
        try:
            r = backend.generate([prompt], sampling, validate=validate, tag=tag)[0]
        except BackendError as e:  # configuration: unknown model (404), refused credentials (401/403)
            raise AgentFailure(f"{self.describe()}: {e}", "config") from e
        if r.ok:
            if schema is not None:
                self._structured_ok = True
            return r.value if validate else r.text
        if schema is not None and self._structured_ok is None and _refuses_schema(r):
            self._structured_ok = False
            self.events.append(f"{self.describe()} refused structured output ({r.error[:120]}); "
                               "asking for plain JSON from now on")
            return self._request(messages, validate, tag, max_tokens, structured=False)
        raise AgentFailure(_failure_text(self.describe(), r, timeout), r.kind or "internal")

    def preflight(self) -> str:
        """One tiny request, before the search spends anything: is the endpoint there, does it
        serve the model? Returns the backend's description; raises AgentFailure naming it."""
        self._request([{"role": "user", "content": "Reply with the word OK."}], None, "agent-preflight",
                      max_tokens=4, structured=False)
        return self.describe()

    def _validator(self, what: str):
        limit = self.config.max_reply_chars

        def validate(text: str) -> list[Proposal]:
            from stdlib_ops.backends import MalformedOutput

            if len(text) > limit:
                raise MalformedOutput(f"a reply of {len(text)} characters is over the limit of {limit} "
                                      "(--llm-max-reply-chars)")
            props = parse_reply(text)
            if not props:
                raise MalformedOutput("an empty reply" if not text.strip() else f"no strategy in the {what} reply")
            return props

        return validate

    # ---- the agent protocol

    def _messages(self, ctx: AgentContext, reply: str = prompts.JSON_REPLY) -> list[dict[str, str]]:
        tokens = self.token_budget(self._reply_tokens(reply == prompts.DP_REPLY), suffix=self._suffix(ctx.k))
        msgs = prompts.search_messages(ctx, max_chars=self.config.max_prompt_chars, events=self.events, reply=reply,
                                       tokens=tokens)
        self._check_fits(msgs, tokens, "proposal")
        return msgs

    # ---- the prompt's size in tokens (agents.tokens)

    def _reply_tokens(self, constrained: bool) -> int:
        return min(self.config.max_tokens, _DP_REPLY_TOKENS) if constrained else self.config.max_tokens

    @staticmethod
    def _suffix(n: int) -> str:
        return f"\n(strategy {n} of {n})"

    def token_budget(self, reply_tokens: int, suffix: str = ""):
        """The prompt's room in tokens, or None where the model's context is unknown (an endpoint
        without ``context_tokens``). ``suffix``: text the request adds to the last message."""
        from .tokens import TokenBudget, estimate_tokens, tokenizer_counter

        backend = self.backend
        if getattr(backend, "kind", "") == "local" and hasattr(backend, "render"):
            from stdlib_ops.backends import ChatPrompt, Message

            _, tok = backend.load()

            def render(msgs):
                msgs = [*msgs[:-1], {**msgs[-1], "content": msgs[-1]["content"] + suffix}]
                return backend.render(ChatPrompt(tuple(Message(m["role"], m["content"]) for m in msgs)))

            context = self.config.context_tokens or backend.max_length
            return TokenBudget(context, reply_tokens, tokenizer_counter(tok, render), "the model's tokenizer")
        if self.config.context_tokens is None:
            return None
        cpt = self.config.chars_per_token

        def estimate(msgs):
            return estimate_tokens(msgs, cpt) + math.ceil(len(suffix) / cpt)

        return TokenBudget(self.config.context_tokens, reply_tokens, estimate,
                           f"an estimate of 1 token per {cpt:g} characters")

    def _check_fits(self, msgs, tokens, what: str) -> None:
        if tokens is not None and (n := tokens.count(msgs)) > tokens.prompt_limit:
            raise AgentFailure(f"the {what} prompt takes {n} tokens even with the history summarised; the room is "
                               f"{tokens.describe()}", "config")

    # ---- grammar-constrained decoding (one .dp document per sequence)

    @property
    def constrained(self) -> bool:
        if self.config.grammar == "auto":
            return getattr(self.backend, "kind", "") == "local"
        return self.config.grammar == "on"

    def _grammar(self, ctx: AgentContext) -> str:
        from .grammar import dp_grammar

        return dp_grammar(ctx.catalog, list(ctx.columns))

    def _constrained(self, messages: list[dict[str, str]], n: int, ctx: AgentContext, tag: str) -> list[Proposal]:
        """``n`` documents, each decoded under the grammar (the n prompts differ by their last line,
        so the backend does not fold them into one)."""
        from stdlib_ops.backends import BackendError, ChatPrompt, Message, Sampling

        grammar = self._grammar(ctx)
        timeout = self._timeout()
        if timeout is not None and hasattr(self.backend, "timeout"):
            self.backend.timeout = timeout
        prompts_ = []
        for i in range(n):
            msgs = [*messages[:-1], {**messages[-1], "content": messages[-1]["content"] + f"\n(strategy {i + 1} of {n})"}]
            # (the token budget counted the longest of these suffixes: self._suffix)
            prompts_.append(ChatPrompt(tuple(Message(m["role"], m["content"]) for m in msgs)))
        sampling = Sampling(temperature=self.config.temperature, max_tokens=self._reply_tokens(True),
                            seed=self.requests, grammar=grammar)
        self.requests += 1
        try:
            results = self.backend.generate(prompts_, sampling, validate=self._validator(tag.split("-")[-1]), tag=tag)
        except BackendError as e:
            raise AgentFailure(f"{self.describe()}: {e}", "config") from e
        props = [p for r in results if r.ok for p in r.value[:1]]
        if not props:
            raise AgentFailure(_failure_text(self.describe(), results[0], timeout), results[0].kind or "internal")
        return [Proposal(p.dp_text, p.rationale, "llm-grammar") for p in props]

    def propose(self, context: AgentContext) -> list[Proposal]:
        if self.constrained:
            msgs = self._messages(context, reply=prompts.DP_REPLY)
            return self._constrained(msgs, context.k, context, "agent-propose")[: context.k_max]
        props = self._request(self._messages(context), self._validator("proposal"), "agent-propose")
        return props[: context.k_max]

    def repair(self, context: AgentContext, request: RepairRequest) -> Proposal | None:
        try:
            msgs = self._fitting_repair(context, request, prompts.DP_REPLY if self.constrained else None)
            if msgs is None:
                return None
            if self.constrained:
                return self._constrained(msgs, 1, context, "agent-repair")[0]
            props = self._request(msgs, self._validator("repair"), "agent-repair")
        except AgentFailure as e:
            if e.kind == "malformed":  # a repair reply without a strategy gives this repair up
                self.events.append(f"repair attempt {request.attempt} gave no strategy: {e}")
                return None
            raise
        return props[0]

    def _repair_messages(self, context: AgentContext, request: RepairRequest, reply: str | None = None) -> list[dict[str, str]]:
        return prompts.repair_messages(context, request, reply=reply)

    def _fitting_repair(self, context: AgentContext, request: RepairRequest, reply: str | None) -> list[dict[str, str]] | None:
        """The repair request, or None (an event says why) when it does not fit the model's context."""
        msgs = self._repair_messages(context, request, reply=reply)
        tokens = self.token_budget(self._reply_tokens(reply == prompts.DP_REPLY), suffix=self._suffix(1))
        if tokens is not None and (n := tokens.count(msgs)) > tokens.prompt_limit:
            self.events.append(f"repair attempt {request.attempt} was not asked: its prompt takes {n} tokens, "
                               f"over {tokens.describe()}")
            return None
        return msgs


class AutoMLAgent(LLMAgent):
    """Baseline: absolute scores, no group-relative comparison, no catalog documentation."""

    name = "automl"

    def _messages(self, ctx: AgentContext, reply: str | None = None) -> list[dict[str, str]]:
        msgs = prompts.automl_messages(ctx, reply=None if reply == prompts.JSON_REPLY else reply)
        # the baseline shows its history whole (no summary): a prompt over the context is a failure
        self._check_fits(msgs, self.token_budget(self._reply_tokens(reply == prompts.DP_REPLY), self._suffix(ctx.k)),
                         "proposal")
        return msgs

    def _repair_messages(self, context: AgentContext, request: RepairRequest, reply: str | None = None) -> list[dict[str, str]]:
        return prompts.repair_messages(context, request, catalog=False, reply=reply)


def _refuses_schema(r) -> bool:
    """A client error about the request's ``response_format`` (not about its length)."""
    msg = (r.error or "").lower()
    if r.kind != "client" or _too_long(msg):
        return False
    return any(f"http {s}" in msg for s in (400, 415, 422, 501)) or "response_format" in msg or "json_schema" in msg


def _too_long(msg: str) -> bool:
    return bool(re.search(r"context|too long|maximum.{0,40}tokens|too many tokens", msg.lower()))


def _failure_text(where: str, r, timeout: float | None) -> str:
    msg = " ".join((r.error or "").split())[:300]
    if r.kind == "client" and _too_long(msg):
        return (f"{where} refused the prompt as too long for the model's context ({msg}); "
                "give the model's context with --llm-context-tokens, or lower --llm-max-prompt-chars")
    if r.kind == "timeout":
        return f"{where} gave no answer within {timeout:g} s, {r.attempts} attempt(s) (--llm-timeout, --llm-retries)"
    if r.kind == "malformed":
        return f"{where}: {msg} ({r.attempts} attempt(s))"
    return f"{where} failed after {r.attempts} attempt(s): {r.kind}: {msg}"
