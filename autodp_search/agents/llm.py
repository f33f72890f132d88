"""LLM agents through any OpenAI-compatible endpoint (the ``openai`` package).

``LLMAgent`` asks for structured output (the .dp document's JSON Schema wrapped in a list) and
falls back to a plain request plus a lenient parse (JSON anywhere in the reply, or ```yaml blocks)
when the server does not support ``response_format``. ``AutoMLAgent`` is the comparison baseline in
the style of AutoML-agents: the same client, but prompts with absolute scores only, no group
comparison and no catalog documentation.

Prompts are built from the ``AgentContext`` only (see ``autodp_search.prompts``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

from .. import prompts
from .base import AgentContext, Proposal, RepairRequest

__all__ = ["LLMAgent", "AutoMLAgent", "LLMConfig", "parse_reply", "response_schema"]


@dataclass
class LLMConfig:
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.7
    max_tokens: int = 4096
    timeout_s: float = 120.0
    max_retries: int = 2
    structured: str = "auto"  # "auto" (try, fall back), "on", "off"


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

    def __init__(self, config: LLMConfig | None = None, client: Any = None):
        self.config = config or LLMConfig()
        self._client = client
        self._structured_ok: bool | None = None if self.config.structured == "auto" else self.config.structured == "on"
        self.requests = 0

    @property
    def client(self):
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError as e:  # pragma: no cover - depends on the install
                raise RuntimeError("the LLM agent needs the `openai` package (pip install openai)") from e
            key = os.environ.get(self.config.api_key_env) or "none"
            self._client = OpenAI(base_url=self.config.base_url, api_key=key, timeout=self.config.timeout_s,
                                  max_retries=self.config.max_retries)
        return self._client

    def _messages(self, ctx: AgentContext) -> list[dict[str, str]]:
        return prompts.search_messages(ctx)

    def _chat(self, messages: list[dict[str, str]]) -> str:
        kw: dict[str, Any] = {"model": self.config.model, "messages": messages, "temperature": self.config.temperature,
                              "max_tokens": self.config.max_tokens}
        if self._structured_ok is not False:
            try:
                self.requests += 1
                r = self.client.chat.completions.create(
                    **kw,
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": "strategies", "schema": response_schema(), "strict": False}},
                )
                self._structured_ok = True
                return r.choices[0].message.content or ""
            except Exception as e:  # the server does not take response_format: fall back once, remember
                if self._structured_ok is True or not _is_unsupported(e):
                    raise
                self._structured_ok = False
        self.requests += 1
        r = self.client.chat.completions.create(**kw)
        return r.choices[0].message.content or ""

    def propose(self, context: AgentContext) -> list[Proposal]:
        reply = self._chat(self._messages(context))
        props = parse_reply(reply)
        return props[: context.k_max]

    def repair(self, context: AgentContext, request: RepairRequest) -> Proposal | None:
        reply = self._chat(prompts.repair_messages(context, request))
        props = parse_reply(reply)
        return props[0] if props else None


class AutoMLAgent(LLMAgent):
    """Baseline: absolute scores, no group-relative comparison, no catalog documentation."""

    name = "automl"

    def _messages(self, ctx: AgentContext) -> list[dict[str, str]]:
        return prompts.automl_messages(ctx)

    def repair(self, context: AgentContext, request: RepairRequest) -> Proposal | None:
        reply = self._chat(prompts.repair_messages(context, request, catalog=False))
        props = parse_reply(reply)
        return props[0] if props else None


def _is_unsupported(e: Exception) -> bool:
    status = getattr(e, "status_code", None)
    if status in (400, 404, 415, 422, 501):
        return True
    return "response_format" in str(e) or "json_schema" in str(e)
