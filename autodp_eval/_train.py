"""Supervised fine-tuning of one arm: one recipe for every arm, fixed seeds, memoised on disk."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._arm import TrainedArm
from ._cache import atomic_dir, atomic_write_json, read_json, resolve_cache_dir
from ._config import EvalConfig, TrainConfig, canonical_hash
from ._data import Row, fingerprint_rows, load_rows, prompt_text
from ._format import IGNORE, Formatter
from ._models import (
    BaseRef,
    build_tiny,
    load_pretrained,
    load_tokenizer,
    quiet_hf,
    quiet_peft,
    resolve_base,
    resolve_device,
    set_threads,
)
from .errors import EvalConfigError, EvalInputError

__all__ = ["find_arm", "train_arm"]

Log = Callable[[str], None]


def _as_eval_config(config: EvalConfig | TrainConfig | None) -> EvalConfig:
    if config is None:
        return EvalConfig()
    if isinstance(config, TrainConfig):
        return EvalConfig(train=config)
    return config


def arm_key(data_fp: str, base: BaseRef, config: EvalConfig) -> str:
    return canonical_hash({"data": data_fp, "base": base.fingerprint, **config.train_key_fields()})


def train_arm(
    data: Any,
    config: EvalConfig | TrainConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
    tokenizer_data: Any = None,
    log: Log | None = None,
) -> TrainedArm:
    """Fine-tune the configured base model on ``data`` (memoised by data fingerprint + recipe).

    ``tokenizer_data``: for the tiny model, the rows its BPE tokenizer is trained on (default:
    ``data``). :func:`autodp_eval.evaluate` passes the baseline's training rows, so every arm of a
    comparison shares one tokenizer. Returns a :class:`TrainedArm`; a second call with the same data
    and recipe returns the stored arm (``from_cache=True``) without training.
    """
    cfg, rows, base, key, data_fp, path, cache = _locate(data, config, cache_dir, tokenizer_data)
    arm = _stored(cfg, base, path, cache)
    if arm is not None:
        return arm
    return _train(rows, cfg, base, key, data_fp, path, cache, log or (lambda _m: None))


def find_arm(
    data: Any,
    config: EvalConfig | TrainConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
    tokenizer_data: Any = None,
) -> TrainedArm | None:
    """The arm :func:`train_arm` would return from the memo, or None when it would have to train."""
    cfg, _rows, base, _key, _fp, path, cache = _locate(data, config, cache_dir, tokenizer_data)
    return _stored(cfg, base, path, cache)


def _locate(
    data: Any, config: EvalConfig | TrainConfig | None, cache_dir: str | Path | None, tokenizer_data: Any
) -> tuple[EvalConfig, list[Row], BaseRef, str, str, Path, Path]:
    cfg = _as_eval_config(config)
    rows = load_rows(data, category_column=None, what="training data")
    if not rows:
        raise EvalInputError("training data is empty")
    tok_rows = rows
    if tokenizer_data is not None:
        tok_rows = load_rows(tokenizer_data, category_column=None, what="tokenizer data")
    cache = resolve_cache_dir(cache_dir)
    base = resolve_base(cfg.train, tok_rows, cache)
    data_fp = fingerprint_rows(rows)
    key = arm_key(data_fp, base, cfg)
    return cfg, rows, base, key, data_fp, cache / "arms" / key[:32], cache


def _stored(cfg: EvalConfig, base: BaseRef, path: Path, cache: Path) -> TrainedArm | None:
    meta = read_json(path / "arm.json")
    if meta is None:
        return None
    arm = TrainedArm.model_validate(
        {**meta, "path": str(path), "from_cache": True, "tokenizer_fingerprint": base.tokenizer_fingerprint}
    )
    if arm.method == "lora":
        arm.base_path = _lora_base_path(base, cfg, cache)
    return arm


def _lora_base_path(base: BaseRef, cfg: EvalConfig, cache: Path) -> str:
    """The base model folder a LoRA adapter applies to (the tiny base is saved once for this)."""
    if base.kind != "tiny":
        assert base.path is not None
        return base.path
    path = cache / "models" / f"tiny-{base.fingerprint[:32]}"
    if not (path / "config.json").exists():
        tok = load_tokenizer(str(base.tokenizer_path))
        model = build_tiny(cfg.train.tiny, tok, cfg.train, "cpu")
        with quiet_hf(), atomic_dir(path) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    return str(path)


def _batches(
    examples: list[tuple[list[int], list[int]]], keys: list[str], batch_size: int, seed: int
) -> list[list[int]]:
    """Batches of indices in an order fixed by each row's ``key`` (its question), not its position.

    Two arms whose data differ by some dropped rows or by edits to the answers then see their
    common questions in the same order (common random numbers): the order of a shuffle by position
    would change entirely with the first dropped row, and that alone moves a small model's
    held-out likelihood as much as many a cleaning step. The comparison measures the data, not the
    shuffle. Within windows of 8 batches, similar lengths go together (less padding).
    """
    rank = [hashlib.blake2b(f"{seed}\0{k}".encode(), digest_size=8).digest() for k in keys]
    idx = sorted(range(len(examples)), key=lambda j: (rank[j], j))
    window = batch_size * 8
    batches: list[list[int]] = []
    for start in range(0, len(idx), window):
        chunk = sorted(idx[start : start + window], key=lambda j: (len(examples[j][0]), rank[j], j))
        group = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        group.sort(key=lambda b: min(rank[j] for j in b))
        batches.extend(group)
    return batches


def order_key(prompt: str) -> str:
    """What fixes a row's place in the batch order: its question, case and spacing aside."""
    return " ".join(prompt.lower().split())


def collate(items: list[tuple[list[int], list[int]]], pad_id: int, device: str) -> tuple[Any, Any, Any]:
    """Right-padded ``(input_ids, attention_mask, labels)`` tensors."""
    import torch

    n = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), n), pad_id, dtype=torch.long)
    labels = torch.full((len(items), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    for i, (x, y) in enumerate(items):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def _train(
    rows: list[Row], cfg: EvalConfig, base: BaseRef, key: str, data_fp: str, path: Path, cache: Path, log: Log
) -> TrainedArm:
    import torch

    tc = cfg.train
    set_threads(cfg.threads)
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    base_path: str | None = None
    if base.kind == "tiny":
        tok = load_tokenizer(str(base.tokenizer_path))
        if tc.method == "lora":
            base_path = _lora_base_path(base, cfg, cache)
            model = load_pretrained(base_path, tc, device)
        else:
            model = build_tiny(tc.tiny, tok, tc, device)
    else:
        assert base.path is not None
        tok = load_tokenizer(base.path, allow_download=tc.allow_download)
        model = load_pretrained(base.path, tc, device)
        base_path = base.path
    fmt = Formatter(
        tok, max_seq_len=tc.max_seq_len, max_prompt_len=tc.max_prompt_len, chat_template=tc.chat_template
    )
    prompts = [prompt_text(r["instruction"], r.get("input")) for r in rows]
    examples = fmt.pairs(prompts, [r["output"] for r in rows])
    keys = [order_key(q) for q in prompts]

    torch.manual_seed(tc.seed)
    if tc.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = [t for t in tc.lora_target_modules if t in names]
        if not targets:
            raise EvalConfigError(
                f"none of the LoRA target modules {tc.lora_target_modules} exist in {tc.model}; "
                f"linear layers there include: {', '.join(sorted(n for n in names if n.endswith('proj'))[:12])}"
            )
        lcfg = LoraConfig(
            r=tc.lora_r,
            lora_alpha=tc.lora_alpha,
            lora_dropout=tc.lora_dropout,
            target_modules=targets,
            task_type=TaskType.CAUSAL_LM,
            bias="none",
        )
        with quiet_peft():
            model = get_peft_model(model, lcfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.learning_rate, weight_decay=tc.weight_decay)
    steps_per_epoch = math.ceil(len(examples) / tc.batch_size)
    total = tc.max_steps or max(tc.min_steps, tc.epochs * steps_per_epoch)
    warmup = max(1, int(tc.warmup_ratio * total))

    def lr_lambda(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / total)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    # tail averaging: the running mean of the iterates over the last `average_tail` of the steps
    avg_from = total - int(tc.average_tail * total) if tc.average_tail else None
    averaged: list[Any] | None = None
    n_averaged = 0
    step = 0
    epoch_losses: list[float] = []
    epoch = 0
    log(f"training {tc.model} ({tc.method}) on {len(rows)} rows: {total} steps of {tc.batch_size}")
    while step < total:
        losses = []
        for b in _batches(examples, keys, tc.batch_size, tc.seed * 1000 + epoch):
            if step >= total:
                break
            ids, mask, labels = collate([examples[j] for j in b], fmt.pad_id, device)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            step += 1
            if avg_from is not None and step > avg_from:
                n_averaged += 1
                with torch.no_grad():
                    if averaged is None:
                        averaged = [p.detach().clone() for p in params]
                    else:
                        for a, p in zip(averaged, params, strict=True):
                            a.add_(p.detach() - a, alpha=1.0 / n_averaged)
        epoch_losses.append(sum(losses) / max(1, len(losses)))
        log(f"  epoch {epoch + 1}: mean train loss {epoch_losses[-1]:.3f} ({time.perf_counter() - t0:.0f} s)")
        epoch += 1
    if averaged is not None:
        with torch.no_grad():
            for a, p in zip(averaged, params, strict=True):
                p.copy_(a)
    seconds = time.perf_counter() - t0
    arm = TrainedArm(
        key=key,
        path=str(path),
        method=tc.method,
        model=tc.model,
        base_path=base_path,
        base_fingerprint=base.fingerprint,
        tokenizer_fingerprint=base.tokenizer_fingerprint,
        data_fingerprint=data_fp,
        n_train=len(rows),
        steps=step,
        epochs=round(step / steps_per_epoch, 4),
        train_loss_first_epoch=epoch_losses[0] if epoch_losses else None,
        train_loss_last_epoch=epoch_losses[-1] if epoch_losses else None,
        train_seconds=round(seconds, 3),
    )
    model.eval()
    with quiet_hf(), atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_json(
            tmp / "arm.json", arm.model_dump(mode="json", exclude={"path", "from_cache", "base_path"})
        )
    return arm
