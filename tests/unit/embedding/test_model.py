"""The embedding model (the real all-MiniLM-L6-v2) and the EmbeddingService servicer."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from tests.conftest import InProcessStack


@pytest.fixture
async def embedding(stack: InProcessStack):
    """A stub to the in-process embedding service."""
    async with grpc.aio.insecure_channel(stack.address("embedding")) as channel:
        yield embedding_grpc.EmbeddingServiceStub(channel), channel


class TestEmbedTexts:
    """EmbedTexts."""

    async def test_returns_384_dim_vectors_normalized_on_request(self, embedding):
        """The packaged model gives 384-dim vectors; normalize=true makes them unit length."""
        stub, _ = embedding
        raw = await stub.EmbedTexts(embedding_pb2.EmbedTextsRequest(texts=["a cat", "a dog"]))
        unit = await stub.EmbedTexts(
            embedding_pb2.EmbedTextsRequest(texts=["a cat", "a dog"], normalize=True)
        )
        assert raw.model == "all-MiniLM-L6-v2"
        assert raw.dimensions == 384
        assert [len(e.values) for e in unit.embeddings] == [384, 384]
        norms = [np.linalg.norm(e.values) for e in unit.embeddings]
        assert norms == pytest.approx([1.0, 1.0], abs=1e-5)
        cosine = np.dot(unit.embeddings[0].values, unit.embeddings[1].values)
        assert 0.2 < cosine < 0.95  # related, not identical

    @pytest.mark.parametrize(
        ("texts", "field"),
        [
            ([], "texts"),
            (["ok", ""], "texts[1]"),
            (["x" * 8193], "texts[0]"),
            (["a"] * 2049, "texts"),
        ],
        ids=["none", "empty-text", "too-long", "too-many"],
    )
    async def test_limits_are_enforced(self, embedding, texts, field):
        """Count and length limits give INVALID_ARGUMENT naming the field."""
        stub, _ = embedding
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.EmbedTexts(embedding_pb2.EmbedTextsRequest(texts=texts))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (caught.value.details() or "")

    async def test_health_answers_while_a_big_batch_runs(self, embedding):
        """The model runs off the event loop: health checks answer at once meanwhile (well
        under the batch's seconds, even on a loaded machine)."""
        stub, channel = embedding
        texts = [f"passage {i} on dense retrieval and reranking " * 15 for i in range(256)]
        call = asyncio.ensure_future(stub.EmbedTexts(embedding_pb2.EmbedTextsRequest(texts=texts)))
        await asyncio.sleep(0.2)
        health = health_pb2_grpc.HealthStub(channel)
        started = time.perf_counter()
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        latency = time.perf_counter() - started
        assert not call.done(), "the batch finished too early to prove anything"
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert latency < 0.5
        assert len((await call).embeddings) == 256


class TestRankDocuments:
    """RankDocuments."""

    async def test_ranks_by_meaning(self, embedding):
        """The semantically closest candidate ranks first, scores descend, top_k cuts."""
        stub, _ = embedding
        reply = await stub.RankDocuments(
            embedding_pb2.RankDocumentsRequest(
                query="neural networks that translate between languages",
                candidates=[
                    embedding_pb2.RankCandidate(id="bake", text="How to bake sourdough bread"),
                    embedding_pb2.RankCandidate(
                        id="mt", text="A sequence model for machine translation of sentences"
                    ),
                    embedding_pb2.RankCandidate(id="stock", text="Stock market prices fell today"),
                ],
                top_k=2,
            )
        )
        assert reply.results[0].id == "mt"
        assert reply.results[0].index == 1
        assert len(reply.results) == 2
        assert reply.results[0].score > reply.results[1].score
