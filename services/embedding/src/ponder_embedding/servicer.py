"""gRPC servicer of ponder.embedding.v1.EmbeddingService."""

from __future__ import annotations

import grpc

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_embedding.model import EmbeddingModel
from ponder_runtime import RequestValidator, UnavailableError


MAX_TEXTS = 256
MAX_TEXT_LENGTH = 8192


class EmbeddingServicer(embedding_grpc.EmbeddingServiceServicer):
    """Embeds and ranks with the loaded model. The cache RPCs arrive with issue 3 and answer
    UNIMPLEMENTED until then (the generated base methods)."""

    def __init__(self) -> None:
        self.model: EmbeddingModel | None = None

    def _ready_model(self) -> EmbeddingModel:
        if self.model is None:
            raise UnavailableError("the embedding model is still loading", retry_after_seconds=2)
        return self.model

    async def EmbedTexts(
        self, request: embedding_pb2.EmbedTextsRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.EmbedTextsResponse:
        """Embed 1 to 256 texts."""
        check = RequestValidator()
        check.count("texts", request.texts, low=1, high=MAX_TEXTS)
        for index, text in enumerate(request.texts):
            check.text(f"texts[{index}]", text, max_length=MAX_TEXT_LENGTH)
        check.check()
        model = self._ready_model()
        vectors = await model.embed(request.texts, normalize=request.normalize)
        return embedding_pb2.EmbedTextsResponse(
            embeddings=[embedding_pb2.Embedding(values=row.tolist()) for row in vectors],
            model=model.name,
            dimensions=model.dimensions,
        )

    async def RankDocuments(
        self, request: embedding_pb2.RankDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.RankDocumentsResponse:
        """Rank candidates by cosine similarity to the query."""
        check = RequestValidator()
        check.text("query", request.query, max_length=MAX_TEXT_LENGTH)
        check.count("candidates", request.candidates, low=1, high=MAX_TEXTS)
        for index, candidate in enumerate(request.candidates):
            check.text(f"candidates[{index}].id", candidate.id, max_length=512)
            check.text(f"candidates[{index}].text", candidate.text, max_length=MAX_TEXT_LENGTH)
        check.number("top_k", request.top_k, low=1, high=MAX_TEXTS, zero_means_default=True)
        check.check()
        model = self._ready_model()
        ranked = await model.rank(request.query, [c.text for c in request.candidates])
        if request.top_k:
            ranked = ranked[: request.top_k]
        return embedding_pb2.RankDocumentsResponse(
            results=[
                embedding_pb2.RankedCandidate(
                    id=request.candidates[index].id, index=index, score=score
                )
                for index, score in ranked
            ],
            model=model.name,
        )
