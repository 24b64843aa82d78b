"""What the research domain needs from an embedding model: vectors and rankings (no transport)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt


Matrix = npt.NDArray[np.float32]


class EmbeddingUnavailableError(Exception):
    """The embedding model could not answer; the message says how it failed."""


class Embedder(Protocol):
    """Unit vectors and similarity rankings (the gRPC EmbeddingClient is one)."""

    @property
    def model(self) -> str:
        """The model's name, once it has answered."""
        ...

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit vectors, one row per text."""
        ...

    async def rank(
        self, query: str, candidates: Sequence[tuple[str, str]]
    ) -> list[tuple[int, float]]:
        """(candidate index, cosine similarity) for every (id, text) candidate, best first."""
        ...
