"""The batch order of training: by question, so that two arms differ by their data, not their shuffle."""

from __future__ import annotations

import random

from autodp_eval._train import _batches, order_key


def _examples(n: int, seed: int = 0) -> tuple[list[tuple[list[int], list[int]]], list[str]]:
    rng = random.Random(seed)
    keys = [order_key(f"What is condition {rng.getrandbits(40):x} ?") for _ in range(n)]
    examples = [([0] * rng.randint(5, 60), []) for _ in range(n)]
    return examples, keys


def test_every_row_once_and_deterministic():
    ex, keys = _examples(300)
    batches = _batches(ex, keys, 16, seed=7)
    assert sorted(j for b in batches for j in b) == list(range(300))
    assert all(1 <= len(b) <= 16 for b in batches)
    assert _batches(ex, keys, 16, seed=7) == batches
    assert _batches(ex, keys, 16, seed=8) != batches  # another epoch or seed: another order


def test_a_rows_place_follows_its_question_not_its_position():
    ex, keys = _examples(200)
    perm = list(range(200))
    random.Random(3).shuffle(perm)
    shuffled = _batches([ex[j] for j in perm], [keys[j] for j in perm], 16, seed=1)
    assert [[perm[i] for i in b] for b in shuffled] == _batches(ex, keys, 16, seed=1)


def test_the_order_key_is_the_question_case_and_spacing_aside():
    assert order_key("What is  X ?\n") == order_key("what is x ?")
    assert order_key("What is X ?") != order_key("What is Y ?")
