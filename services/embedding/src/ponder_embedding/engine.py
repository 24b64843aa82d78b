"""The embedding engine: the model behind the micro-batcher and a memo of recent texts, and
the cache that uses them."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from ponder_embedding.batching import Matrix, MicroBatcher
from ponder_embedding.cache.core import SemanticCache
from ponder_embedding.model import EmbeddingModel, normalize


class VectorMemo:
    """The vectors of the most recently embedded texts (a cachetools LRU: the least recently
    used goes first), so that texts seen again — the same candidates reranked for another
    query, a repeated paraphrase — skip the model."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._vectors: LRUCache[bytes, Matrix] = LRUCache(max(max_entries, 1))
        self.hits = 0
        self.misses = 0

    async def embed(
        self, texts: Sequence[str], compute: Callable[[Sequence[str]], Awaitable[Matrix]]
    ) -> Matrix:
        """Vectors for `texts`; only the ones not remembered go to `compute`."""
        keys = [hashlib.blake2b(text.encode(), digest_size=16).digest() for text in texts]
        rows = {i: v for i, key in enumerate(keys) if (v := self._vectors.get(key)) is not None}
        missing = [i for i in range(len(keys)) if i not in rows]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = await compute([texts[i] for i in missing])
            for n, i in enumerate(missing):
                rows[i] = fresh[n]
                if self._max_entries:
                    self._vectors[keys[i]] = fresh[n]
        return np.vstack([rows[i] for i in range(len(keys))]).astype(np.float32, copy=False)


@dataclass(frozen=True, slots=True)
class Engine:
    """Everything the servicer needs once the model is loaded."""

    model: EmbeddingModel
    batcher: MicroBatcher
    memo: VectorMemo
    cache: SemanticCache

    async def embed(self, texts: Sequence[str], *, normalized: bool) -> Matrix:
        """Vectors for `texts` (unit length when `normalized`)."""
        return await embed_texts(self.memo, self.batcher, texts, normalized=normalized)


async def embed_texts(
    memo: VectorMemo, batcher: MicroBatcher, texts: Sequence[str], *, normalized: bool
) -> Matrix:
    """Vectors through the memo and the micro-batcher."""
    vectors = await memo.embed(texts, batcher.embed)
    return normalize(vectors) if normalized else vectors
