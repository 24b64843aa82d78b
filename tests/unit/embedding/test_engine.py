"""VectorMemo: recently embedded texts skip the model, in order, within a bound."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ponder_embedding.engine import VectorMemo


class Counting:
    """An encoder that records what it was asked (vector = [len(text), index])."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.asarray([[len(t), i] for i, t in enumerate(texts)], dtype=np.float32)


async def test_only_unseen_texts_are_computed_and_rows_stay_in_order():
    """A second call computes only its new texts; each row belongs to its own text."""
    memo, encoder = VectorMemo(100), Counting()
    first = await memo.embed(["aa", "bbb"], encoder)
    second = await memo.embed(["c", "aa", "dddd", "bbb"], encoder)
    assert encoder.calls == [["aa", "bbb"], ["c", "dddd"]]
    assert second[:, 0].tolist() == [1, 2, 4, 3]
    np.testing.assert_array_equal(second[1], first[0])
    assert (memo.hits, memo.misses) == (2, 4)


async def test_the_memo_is_bounded_lru():
    """Beyond max_entries the least recently used text is forgotten."""
    memo, encoder = VectorMemo(2), Counting()
    await memo.embed(["a"], encoder)
    await memo.embed(["b"], encoder)
    await memo.embed(["a"], encoder)  # a is now the most recent
    await memo.embed(["c"], encoder)  # evicts b
    await memo.embed(["a", "b"], encoder)
    assert encoder.calls[-1] == ["b"]


async def test_a_zero_sized_memo_remembers_nothing():
    """max_entries=0 turns the memo off."""
    memo, encoder = VectorMemo(0), Counting()
    await memo.embed(["a"], encoder)
    await memo.embed(["a"], encoder)
    assert len(encoder.calls) == 2
