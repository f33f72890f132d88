"""How many tokens an agent's prompt takes, and how many the model has room for.

A prompt that does not fit the model's context is cut by an in-process model (the local backend
truncates it, losing the request at its end) or refused by a server (an HTTP 400 that ends the
search). So the agent measures its prompt before sending it, and the prompt builder summarises the
history until it fits (``autodp_search.prompts.search_messages``):

- an in-process model (``local:...``) counts with its own tokenizer, on the prompt as the model
  sees it (the chat template applied); its context is the backend's ``max_length`` unless
  ``--llm-context-tokens`` says otherwise;
- an OpenAI-compatible endpoint has no tokenizer here: with ``--llm-context-tokens`` set, the
  count is an estimate (``estimate_tokens``: one token per ``chars_per_token`` characters, 3 by
  default, which over-counts English prose and YAML for the usual BPE vocabularies, plus a few
  tokens per message for the chat template); without it the context is unknown and only the
  character limit (``--llm-max-prompt-chars``) applies.

The reply needs room too: the prompt may take the context minus the reply's ``max_tokens``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TokenBudget", "estimate_tokens", "tokenizer_counter"]

Messages = list[dict[str, str]]

#: tokens a chat template adds around each message (role markers, separators)
MESSAGE_OVERHEAD = 4


def estimate_tokens(msgs: Messages, chars_per_token: float = 3.0) -> int:
    """An upper estimate of a chat prompt's tokens for a model whose tokenizer is not at hand."""
    return sum(math.ceil(len(m["content"]) / chars_per_token) + MESSAGE_OVERHEAD for m in msgs)


def tokenizer_counter(tokenizer, render: Callable[[Messages], str]) -> Callable[[Messages], int]:
    """Counts with a (Hugging Face) tokenizer the text ``render`` makes of the messages."""

    def count(msgs: Messages) -> int:
        return len(tokenizer(render(msgs), add_special_tokens=False)["input_ids"])

    return count


@dataclass(frozen=True)
class TokenBudget:
    """``context`` tokens in all, ``reply`` of them kept for the answer; ``how`` says how the
    prompt is counted (for the messages that report a limit that bit)."""

    context: int
    reply: int
    count: Callable[[Messages], int]
    how: str

    @property
    def prompt_limit(self) -> int:
        return self.context - self.reply

    def fits(self, msgs: Messages) -> bool:
        return self.count(msgs) <= self.prompt_limit

    def describe(self) -> str:
        return (f"{self.prompt_limit} tokens ({self.context}-token context less {self.reply} for the reply, "
                f"counted with {self.how}; --llm-context-tokens)")
