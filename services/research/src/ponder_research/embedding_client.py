"""The research service's use of the embedding service: vectors and similarity ranking."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import numpy as np

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_research.embedder import EmbeddingUnavailableError, Matrix
from ponder_runtime.deadlines import timeout_within_deadline


CHUNK = 64


class EmbeddingClient:
    """The Embedder over gRPC: unit vectors and rankings from EmbeddingService; each call gets
    `timeout`, capped by what the caller of the RPC being served has left."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float) -> None:
        self._stub = embedding_grpc.EmbeddingServiceStub(channel)
        self._timeout = timeout
        self.model = ""

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit vectors, one per text, in chunks of 64 texts per call."""
        rows: list[Matrix] = []
        for start in range(0, len(texts), CHUNK):
            request = embedding_pb2.EmbedTextsRequest(
                texts=list(texts[start : start + CHUNK]), normalize=True
            )
            try:
                reply = await self._stub.EmbedTexts(
                    request, timeout=timeout_within_deadline(self._timeout)
                )
            except grpc.aio.AioRpcError as exc:
                raise EmbeddingUnavailableError(f"{exc.code().name}: {exc.details()}") from exc
            self.model = reply.model
            rows.append(np.asarray([e.values for e in reply.embeddings], dtype=np.float32))
        return np.vstack(rows) if rows else np.empty((0, 0), dtype=np.float32)

    async def rank(
        self, query: str, candidates: Sequence[tuple[str, str]]
    ) -> list[tuple[int, float]]:
        """(candidate index, cosine similarity) for every (id, text) candidate, best first."""
        request = embedding_pb2.RankDocumentsRequest(
            query=query,
            candidates=[embedding_pb2.RankCandidate(id=i, text=t) for i, t in candidates],
        )
        try:
            reply = await self._stub.RankDocuments(
                request, timeout=timeout_within_deadline(self._timeout)
            )
        except grpc.aio.AioRpcError as exc:
            raise EmbeddingUnavailableError(f"{exc.code().name}: {exc.details()}") from exc
        self.model = reply.model
        return [(result.index, result.score) for result in reply.results]
