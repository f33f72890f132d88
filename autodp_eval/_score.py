"""Per-question likelihood of the reference answer under a trained arm (memoised)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ._cache import arm_entry, atomic_write_json, read_list
from ._config import EvalConfig
from ._data import Row, load_rows, prompt_text
from ._format import IGNORE, Formatter
from ._models import load_arm, set_threads
from ._train import TrainedArm, collate

__all__ = ["RefScore", "mean_loss", "score_references"]


class RefScore(BaseModel):
    """Summed negative log-likelihood (nats) of a reference answer's tokens given its prompt."""

    nll: float
    tokens: int
    chars: int

    @property
    def per_token(self) -> float:
        return self.nll / max(1, self.tokens)

    @property
    def per_char(self) -> float:
        return self.nll / max(1, self.chars)


def mean_loss(scores: list[RefScore]) -> float | None:
    """Mean NLL per reference token over all questions (token-weighted, as a training loss is)."""
    tokens = sum(s.tokens for s in scores)
    return sum(s.nll for s in scores) / tokens if tokens else None


def score_references(
    arm: TrainedArm, rows: Any, config: EvalConfig | None = None, *, cache_dir: str | Path | None = None
) -> list[RefScore]:
    """NLL of each row's ``output`` given its prompt under ``arm``, truncated exactly as in training.

    Memoised by (arm, rows, truncation). One entry per row, in order.
    """
    cfg = config or EvalConfig()
    rows_: list[Row] = load_rows(rows, category_column=None, what="held-out data")
    tc = cfg.train
    work = {
        "pairs": [[prompt_text(r["instruction"], r.get("input")), r["output"]] for r in rows_],
        "seq": tc.max_seq_len,
        "prompt": tc.max_prompt_len,
    }
    path = arm_entry(cache_dir, "scores", arm.key, cfg, work)
    hit = read_list(path, len(rows_))
    if hit is not None:
        return [RefScore.model_validate(x) for x in hit]
    scores = _score(arm, rows_, cfg)
    atomic_write_json(path, [s.model_dump() for s in scores])
    return scores


def _score(arm: TrainedArm, rows: list[Row], cfg: EvalConfig) -> list[RefScore]:
    import torch

    set_threads(cfg.threads)
    model, tok = load_arm(arm, cfg)
    tc = cfg.train
    fmt = Formatter(
        tok, max_seq_len=tc.max_seq_len, max_prompt_len=tc.max_prompt_len, chat_template=tc.chat_template
    )
    examples = fmt.pairs(
        [prompt_text(r["instruction"], r.get("input")) for r in rows], [r["output"] for r in rows]
    )
    device = next(model.parameters()).device.type
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    out: dict[int, RefScore] = {}
    bs = cfg.score_batch_size
    with torch.no_grad():
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            ids, mask, labels = collate([examples[i] for i in idx], fmt.pad_id, device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target = labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), target.clamp(min=0), reduction="none"
            ) * (target != IGNORE)
            sums = nll.sum(dim=1).tolist()
            counts = (target != IGNORE).sum(dim=1).tolist()
            for j, i in enumerate(idx):
                out[i] = RefScore(nll=float(sums[j]), tokens=int(counts[j]), chars=len(rows[i]["output"]))
    return [out[i] for i in range(len(examples))]
