"""Deterministic stand-in embeddings for cache tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


DIM = 64


def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


async def bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """Unit vectors: the sum of fixed random vectors of each lowercase word."""
    rows = []
    for text in texts:
        vector = sum((_word_vector(w) for w in text.lower().split()), np.zeros(DIM, np.float32))
        rows.append(vector / (np.linalg.norm(vector) or 1.0))
    return np.asarray(rows, dtype=np.float32)
