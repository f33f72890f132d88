"""The per-process memo of token ids (``_format._IDS``) changes no result: the ids, and the arms,
answers and scores an evaluation memoises, are byte-identical with the memo warm or cleared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autodp_eval import EvalConfig, _format, evaluate
from autodp_eval._format import _IDS, Formatter, clear_ids
from autodp_eval._models import load_tokenizer, tiny_tokenizer_dir
from autodp_eval.testing import make_qa_rows


def _files(cache: Path) -> dict[str, bytes]:
    """Every memo file of the arms, answers and scores (byte content), by path inside the cache."""
    return {
        str(p.relative_to(cache)): p.read_bytes()
        for folder in ("arms", "answers", "scores")
        for p in sorted((cache / folder).rglob("*"))
        if p.is_file() and p.name != "arm.json"  # arm.json records the training seconds
    }


def _stable(x: Any) -> Any:
    """A result without what differs between two identical runs (clock times, cache paths)."""
    if isinstance(x, dict):
        return {k: _stable(v) for k, v in x.items() if k not in {"timings", "train_seconds", "arm_path"}}
    return [_stable(v) for v in x] if isinstance(x, list) else x


def test_memoised_ids_equal_fresh_ids_in_any_batch(tmp_path, monkeypatch):
    rows = make_qa_rows(60, seed=3)
    spec = EvalConfig.preset("smoke").train.tiny
    tok = load_tokenizer(str(tiny_tokenizer_dir(rows, spec, tmp_path)[0]))
    prompts = [r["instruction"] for r in rows]
    answers = [r["output"] for r in rows]

    def fmt() -> Formatter:
        return Formatter(tok, max_seq_len=64, max_prompt_len=8)

    clear_ids()
    fresh = fmt().pairs(prompts, answers)
    fresh_prompts = fmt().prompt_ids(prompts)
    assert _IDS  # the memo was filled (else this test compares the old path with itself)
    clear_ids()
    # warm the memo with another batch: a subset, reversed, with a repeat and a text of its own
    fmt().pairs([*prompts[::-2], prompts[0], "a question of its own"], [*answers[::-2], answers[0], "x"])
    assert fmt().pairs(prompts, answers) == fresh
    assert fmt().prompt_ids(prompts) == fresh_prompts
    # a different truncation is a different entry, not a stale hit
    assert Formatter(tok, max_seq_len=64, max_prompt_len=3).prompt_ids(prompts) != fresh_prompts
    # past its bound the memo starts over (hits mixed with new texts included), with the same ids
    monkeypatch.setattr(_format, "_IDS_MAX", 50)
    assert fmt().pairs([*prompts, "one more"], [*answers, "y"])[:-1] == fresh
    assert fmt().prompt_ids(prompts) == fresh_prompts
    clear_ids()


def test_evaluation_is_byte_identical_with_the_memo_warm(tmp_path, monkeypatch):
    rows = make_qa_rows(120, seed=5)
    cand = rows[:-10]  # a candidate that drops rows, with a placebo arm: three arms per replicate
    cfg = EvalConfig.preset("smoke", replicates=2, placebo=True, heldout_n=16)
    clear_ids()
    with monkeypatch.context() as m:  # the path before the memo: every text encoded every time
        m.setattr(_format, "_tokenizer_signature", lambda _tok: None)
        cold = evaluate(cand, rows, config=cfg, cache_dir=tmp_path / "cold")
    assert not _IDS
    warm = evaluate(cand, rows, config=cfg, cache_dir=tmp_path / "warm")
    assert _IDS
    assert not cold.from_cache and not warm.from_cache
    assert _files(tmp_path / "warm") == _files(tmp_path / "cold")
    assert len(_files(tmp_path / "cold")) >= 6 * 2  # 6 arms: weights, tokenizer, answers, scores
    assert _stable(warm.model_dump()) == _stable(cold.model_dump())
    clear_ids()
