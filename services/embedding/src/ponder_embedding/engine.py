"""The embedding engine: the model behind the micro-batcher, and the cache that uses it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ponder_embedding.batching import Matrix, MicroBatcher
from ponder_embedding.cache.core import SemanticCache
from ponder_embedding.model import EmbeddingModel, normalize


async def embed_normalized(batcher: MicroBatcher, texts: Sequence[str]) -> Matrix:
    """Unit vectors for `texts` (what the cache and ranking compare)."""
    return normalize(await batcher.embed(texts))


@dataclass(frozen=True, slots=True)
class Engine:
    """Everything the servicer needs once the model is loaded."""

    model: EmbeddingModel
    batcher: MicroBatcher
    cache: SemanticCache

    async def embed(self, texts: Sequence[str], *, normalized: bool) -> Matrix:
        """Vectors for `texts` (unit length when `normalized`), through the micro-batcher."""
        if normalized:
            return await embed_normalized(self.batcher, texts)
        return await self.batcher.embed(texts)
