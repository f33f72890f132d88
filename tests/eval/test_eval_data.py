from __future__ import annotations

import json

import polars as pl
import pytest

from autodp_eval import (
    EvalInputError,
    fingerprint_rows,
    load_rows,
    normalize_prompt,
    prompt_text,
    split_heldout,
)
from autodp_eval.testing import make_qa_rows

ROWS = [
    {"instruction": "What is A ?", "input": "", "output": "A is a letter.", "category": "info"},
    {"instruction": "Summarise", "input": "some text", "output": "short", "category": "sum"},
]


def test_prompt_text():
    assert prompt_text("Do X", "") == "Do X"
    assert prompt_text("Do X", None) == "Do X"
    assert prompt_text("Do X", "on Y") == "Do X\n\non Y"


@pytest.mark.parametrize("kind", ["list", "frame", "lazy", "jsonl", "json", "json_wrapped", "parquet"])
def test_load_rows_sources(kind, tmp_path):
    src: object
    if kind == "list":
        src = ROWS
    elif kind == "frame":
        src = pl.DataFrame(ROWS)
    elif kind == "lazy":
        src = pl.DataFrame(ROWS).lazy()
    elif kind == "jsonl":
        src = tmp_path / "d.jsonl"
        src.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    elif kind == "json":
        src = tmp_path / "d.json"
        src.write_text(json.dumps(ROWS))
    elif kind == "json_wrapped":
        src = tmp_path / "d.json"
        src.write_text(json.dumps({"data": ROWS}))
    else:
        src = tmp_path / "d.parquet"
        pl.DataFrame(ROWS).write_parquet(src)
    rows = load_rows(src)
    assert [r["output"] for r in rows] == ["A is a letter.", "short"]
    assert [r["category"] for r in rows] == ["info", "sum"]
    assert rows[1]["input"] == "some text"


def test_optional_columns_default():
    rows = load_rows([{"instruction": "q", "output": None}], category_column="category")
    assert rows == [{"instruction": "q", "input": "", "output": "", "category": None}]


def test_errors_are_one_clear_line(tmp_path):
    with pytest.raises(EvalInputError, match="no 'output' column; columns: answer, instruction"):
        load_rows([{"instruction": "q", "answer": "a"}])
    with pytest.raises(EvalInputError, match="no such file"):
        load_rows(tmp_path / "missing.jsonl")
    with pytest.raises(EvalInputError, match="unknown data format '.csv'"):
        (tmp_path / "d.csv").write_text("a,b\n")
        load_rows(tmp_path / "d.csv")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "q", "output": "a"}\n{oops\n')
    with pytest.raises(EvalInputError, match=r"bad.jsonl:2: invalid JSON"):
        load_rows(bad)
    with pytest.raises(EvalInputError, match="unsupported data source int"):
        load_rows(3)


def test_fingerprint_is_content_and_order_sensitive():
    rows = load_rows(ROWS)
    assert fingerprint_rows(rows) == fingerprint_rows(load_rows(pl.DataFrame(ROWS)))
    assert fingerprint_rows(rows) != fingerprint_rows(rows[::-1])
    changed = [dict(r) for r in rows]
    changed[0]["output"] += "!"
    assert fingerprint_rows(rows) != fingerprint_rows(changed)


def test_normalize_prompt():
    assert normalize_prompt("What is  X ?") == normalize_prompt("what is x?")


def test_split_heldout_is_seeded_and_leak_free():
    rows = make_qa_rows(120, seed=3)
    rows.append(dict(rows[0], output="a second answer to the same question"))  # duplicate question
    train, held = split_heldout(rows, 30, seed=7)
    train2, held2 = split_heldout(rows, 30, seed=7)
    assert held.equals(held2) and train.equals(train2)
    assert held.height == 30
    assert set(held.columns) == set(train.columns) == {"id", "instruction", "input", "output", "category"}
    held_q = {normalize_prompt(q) for q in held["instruction"]}
    assert not held_q & {normalize_prompt(q) for q in train["instruction"]}
    assert len(held_q) == 30
    assert train.height + held.height + (
        1 if normalize_prompt(rows[0]["instruction"]) in held_q else 0
    ) == len(rows)
    _, other = split_heldout(rows, 30, seed=8)
    assert not other.equals(held)


def test_split_heldout_needs_enough_questions():
    with pytest.raises(EvalInputError, match="cannot hold out 5 questions"):
        split_heldout(ROWS, 5)
