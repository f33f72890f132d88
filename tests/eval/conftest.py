"""Shared fixtures of the evaluator tests: a small learnable data set, a corrupted copy, a cache."""

from __future__ import annotations

import re

import pytest

from autodp_eval import EvalConfig, JudgeItem, split_heldout
from autodp_eval.testing import corrupt_rows, judge_prompt_parts, make_qa_rows


@pytest.fixture(scope="session")
def qa_split():
    """(clean training rows, corrupted copy, held-out rows): 240 / 240 / 60."""
    rows = make_qa_rows(300, seed=0)
    train_df, held_df = split_heldout(rows, 60, seed=0)
    clean = train_df.to_dicts()
    corrupted, _ = corrupt_rows(clean, 0.5, seed=1)
    return clean, corrupted, held_df.to_dicts()


@pytest.fixture(scope="session")
def e2e_config() -> EvalConfig:
    """The smoke recipe trained long enough to learn the synthetic data (a few seconds per arm)."""
    return EvalConfig.preset("smoke", train={"epochs": 8}, generate={"max_new_tokens": 40})


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("eval-cache")


def words(text: str | None) -> set[str]:
    return set(re.findall(r"[a-z]+", (text or "").lower()))


def overlap_rule_reply(request: dict) -> str:
    """Scripted judge for the fake server: the answer sharing more words with the reference wins."""
    p = judge_prompt_parts(request)
    ref = words(p["reference"])
    s1, s2 = len(words(p["answer_1"]) & ref), len(words(p["answer_2"]) & ref)
    w = "1" if s1 > s2 else "2" if s2 > s1 else "tie"
    return f'{{"rationale": "reference words covered: answer 1 {s1}, answer 2 {s2}", "winner": "{w}"}}'


def item(i: int, a: str = "answer a", b: str = "answer b", **kw) -> JudgeItem:
    return JudgeItem(
        id=str(i),
        question=kw.pop("question", f"question {i}?"),
        reference=kw.pop("reference", "ref"),
        answer_a=a,
        answer_b=b,
        **kw,
    )
