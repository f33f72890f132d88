"""``TrainedArm``: what training one arm leaves on disk, as the loaders and judges read it.

Its own module so that ``_train`` (which makes arms) and ``_models`` (which loads them) both
import it and neither imports the other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["TrainedArm"]


class TrainedArm(BaseModel):
    """A fine-tuned model on disk: a full model folder, or a LoRA adapter over ``base_path``."""

    key: str
    path: str
    method: Literal["full", "lora"]
    model: str
    base_path: str | None = None
    base_fingerprint: str
    tokenizer_fingerprint: str | None = None
    data_fingerprint: str
    n_train: int
    steps: int
    epochs: float
    train_loss_first_epoch: float | None = None
    train_loss_last_epoch: float | None = None
    train_seconds: float
    from_cache: bool = False
