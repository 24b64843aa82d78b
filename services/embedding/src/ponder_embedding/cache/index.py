"""Per-namespace matrices of unit vectors, searched by cosine similarity (one matrix product)."""

from __future__ import annotations

import numpy as np

from ponder_embedding.cache.entries import Vector


class NamespaceIndex:
    """The vectors of one namespace in a contiguous float32 matrix that grows by doubling.

    Removal swaps the last row into the hole, so rows stay dense and a search is one GEMV.
    """

    def __init__(self, dimensions: int) -> None:
        self._matrix = np.empty((16, dimensions), dtype=np.float32)
        self._keys: list[str] = []
        self._rows: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, vector: Vector) -> None:
        """Insert or replace the vector of `key`."""
        row = self._rows.get(key)
        if row is None:
            row = len(self._keys)
            if row == self._matrix.shape[0]:
                grown = np.empty((row * 2, self._matrix.shape[1]), dtype=np.float32)
                grown[:row] = self._matrix[:row]
                self._matrix = grown
            self._keys.append(key)
            self._rows[key] = row
        self._matrix[row] = vector

    def remove(self, key: str) -> None:
        """Drop `key` (no-op when absent)."""
        row = self._rows.pop(key, None)
        if row is None:
            return
        last = len(self._keys) - 1
        if row != last:
            moved = self._keys[last]
            self._matrix[row] = self._matrix[last]
            self._keys[row] = moved
            self._rows[moved] = row
        self._keys.pop()

    def search(self, query: Vector, k: int = 1) -> list[tuple[str, float]]:
        """The `k` most similar keys with their cosine similarity, best first."""
        count = len(self._keys)
        if count == 0:
            return []
        scores = self._matrix[:count] @ query
        if k == 1:
            best = int(np.argmax(scores))
            return [(self._keys[best], float(scores[best]))]
        k = min(k, count)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._keys[int(i)], float(scores[int(i)])) for i in top]
