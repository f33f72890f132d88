"""Turning (prompt, response) pairs into token ids and labels: one function for every stage.

Training, reference scoring and generation all go through :class:`Formatter`, so the prompt an arm
is trained on is exactly the prompt it is asked at generation time and scored under.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable
from typing import Any

from .errors import EvalConfigError

PLAIN_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"
IGNORE = -100

#: Token ids this process has already computed, by (tokenizer, settings, kind, text). A worker trains
#: several arms in a row whose rows mostly coincide (the baseline's replicates, placebo drops of it, a
#: candidate that keeps most rows) and scores and answers the same held-out questions with each;
#: encoding one text is a pure function of the tokenizer, the settings and the text (a batch encodes
#: each text on its own: no padding, no truncation), so a text is encoded once per process. Measured:
#: tokenising was about a quarter of an arm's CPU outside its training steps (docs/eval.md, "Cost").
#: Kept as int32 arrays (4 bytes a token, not ~36 as a list of ints), at most ``_IDS_MAX`` tokens in all
#: (~200 MB); past it the memo starts over.
_IDS: dict[tuple[str, str, str], array[int]] = {}
_IDS_MAX = 50_000_000
_ids_tokens = 0


def _tokenizer_signature(tok: Any) -> str | None:
    """What a fast tokenizer's ids depend on (its full serialisation and chat template); None for a
    slow one (not memoised)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return None
    h = hashlib.sha256(backend.to_str().encode("utf-8"))
    h.update(f"\0{type(tok).__name__}\0{getattr(tok, 'chat_template', None)}".encode())
    return h.hexdigest()


def clear_ids() -> None:
    """Forget the token ids memoised in this process."""
    global _ids_tokens
    _IDS.clear()
    _ids_tokens = 0


class Formatter:
    """Encodes prompts with the tokenizer's chat template (or a plain template) and truncates.

    The prompt's content keeps its first ``max_prompt_len`` tokens; prompt + response keep
    ``max_seq_len`` tokens; the response ends with the end-of-sequence token when it fits. Labels are
    ``-100`` on prompt tokens, so the loss is on response tokens only.
    """

    def __init__(self, tokenizer: Any, *, max_seq_len: int, max_prompt_len: int, chat_template: str = "auto"):
        self.tok = tokenizer
        self.max_seq_len = max_seq_len
        self.max_prompt_len = max_prompt_len
        self.use_template = chat_template == "auto" and bool(getattr(tokenizer, "chat_template", None))
        eos = tokenizer.eos_token_id
        if eos is None:
            raise EvalConfigError("the tokenizer has no end-of-sequence token; set one before training")
        self.eos_id: int = int(eos)
        pad = tokenizer.pad_token_id
        self.pad_id: int = int(pad) if pad is not None else self.eos_id
        sig = _tokenizer_signature(tokenizer)
        self._sig = None if sig is None else f"{sig}|{self.max_prompt_len}|{self.use_template}"

    def _memo(
        self, kind: str, texts: list[str], encode: Callable[[list[str]], list[list[int]]]
    ) -> list[list[int]]:
        """``encode(texts)``, encoding only the texts this process has not encoded yet (see ``_IDS``)."""
        if self._sig is None:
            return encode(texts)
        global _ids_tokens
        todo = list(dict.fromkeys(t for t in texts if (self._sig, kind, t) not in _IDS))
        new = dict(zip(todo, encode(todo), strict=True)) if todo else {}
        out = [list(new[t]) if t in new else _IDS[(self._sig, kind, t)].tolist() for t in texts]
        size = sum(len(ids) for ids in new.values())
        if new and _ids_tokens + size > _IDS_MAX:
            clear_ids()
        for t, ids in new.items():
            _IDS[(self._sig, kind, t)] = array("i", ids)
        _ids_tokens += size
        return out

    def _truncate_prompts(self, prompts: list[str]) -> list[str]:
        enc = self.tok(prompts, add_special_tokens=False)["input_ids"]
        out = []
        for p, ids in zip(prompts, enc, strict=True):
            if len(ids) > self.max_prompt_len:
                p = self.tok.decode(ids[: self.max_prompt_len], skip_special_tokens=False)
            out.append(p)
        return out

    def prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of each templated prompt, ending where the answer starts."""
        if not prompts:
            return []
        return self._memo("prompt", list(prompts), self._prompt_ids)

    def _prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        prompts = self._truncate_prompts(prompts)
        if self.use_template:
            texts = [
                self.tok.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
            enc = self.tok(texts, add_special_tokens=False)["input_ids"]
        else:
            enc = self.tok([PLAIN_TEMPLATE.format(prompt=p) for p in prompts], add_special_tokens=True)[
                "input_ids"
            ]
        return [list(ids) for ids in enc]

    def pairs(self, prompts: list[str], responses: list[str]) -> list[tuple[list[int], list[int]]]:
        """``(input_ids, labels)`` per pair; labels are -100 except on response tokens (and the EOS)."""
        p_ids = self.prompt_ids(prompts)
        r_enc = self._memo("response", list(responses), self._response_ids) if responses else []
        out = []
        for p, r in zip(p_ids, r_enc, strict=True):
            p = p[: self.max_seq_len - 1]
            r = (list(r) + [self.eos_id])[: self.max_seq_len - len(p)]
            out.append((p + r, [IGNORE] * len(p) + r))
        return out

    def _response_ids(self, responses: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self.tok(responses, add_special_tokens=False)["input_ids"]]
