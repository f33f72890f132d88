"""Turning (prompt, response) pairs into token ids and labels: one function for every stage.

Training, reference scoring and generation all go through :class:`Formatter`, so the prompt an arm
is trained on is exactly the prompt it is asked at generation time and scored under.
"""

from __future__ import annotations

from typing import Any

from .errors import EvalConfigError

PLAIN_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"
IGNORE = -100


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
        r_enc = self.tok(list(responses), add_special_tokens=False)["input_ids"] if responses else []
        out = []
        for p, r in zip(p_ids, r_enc, strict=True):
            p = p[: self.max_seq_len - 1]
            r = (list(r) + [self.eos_id])[: self.max_seq_len - len(p)]
            out.append((p + r, [IGNORE] * len(p) + r))
        return out
