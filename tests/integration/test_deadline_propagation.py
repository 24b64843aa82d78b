"""Calls made while serving an RPC carry what the caller has left, not a fixed timeout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.settings import GatewaySettings
from ponder_research.embedding_client import EmbeddingClient
from ponder_runtime import ServiceServer, configure_telemetry, load_settings
from tests.support.gateways import UnwaitingGateway
from tests.support.ports import free_port
from tests.support.servers import serving


EMBEDDING = "ponder.embedding.v1.EmbeddingService"


class _RecordingEmbedding(embedding_grpc.EmbeddingServiceServicer):
    """Notes the time each call had left; answers EmbedTexts with one vector per text and
    LookupCache with a miss."""

    def __init__(self) -> None:
        self.remaining: list[tuple[str, float | None]] = []

    async def EmbedTexts(
        self, request: embedding_pb2.EmbedTextsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedding_pb2.EmbedTextsResponse:
        """One unit vector per text."""
        self.remaining.append(("EmbedTexts", context.time_remaining()))
        vectors = [embedding_pb2.Embedding(values=[1.0, 0.0]) for _ in request.texts]
        return embedding_pb2.EmbedTextsResponse(embeddings=vectors, model="recorder")

    async def LookupCache(
        self, request: embedding_pb2.LookupCacheRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedding_pb2.LookupCacheResponse:
        """Always a miss."""
        self.remaining.append(("LookupCache", context.time_remaining()))
        return embedding_pb2.LookupCacheResponse(hit=False)


class _ProxyEmbedding(embedding_grpc.EmbeddingServiceServicer):
    """Serves EmbedTexts by asking the next service through research's EmbeddingClient."""

    def __init__(self, client: EmbeddingClient) -> None:
        self._client = client

    async def EmbedTexts(
        self, request: embedding_pb2.EmbedTextsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedding_pb2.EmbedTextsResponse:
        """Embed through the client; answer how many vectors came back."""
        rows = await self._client.embed(list(request.texts))
        return embedding_pb2.EmbedTextsResponse(
            embeddings=[embedding_pb2.Embedding(values=[float(len(rows))])]
        )


def _register(servicer: Any) -> Any:
    return lambda server: embedding_grpc.add_EmbeddingServiceServicer_to_server(servicer, server)


def _bounded(remaining: Sequence[tuple[str, float | None]], method: str, limit: float) -> bool:
    seen = [left for name, left in remaining if name == method]
    return bool(seen) and all(left is not None and 0 < left <= limit for left in seen)


async def test_research_embedding_client_passes_on_the_callers_deadline():
    """An RPC served with 3 s left calls embedding through EmbeddingClient (configured for
    60 s): the embedding call gets at most the 3 s, and 60 s when the RPC had no deadline."""
    recorder = _RecordingEmbedding()
    async with serving([EMBEDDING], _register(recorder)) as downstream:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{downstream.port}")
        client = EmbeddingClient(channel, timeout=60.0)
        async with (
            serving([EMBEDDING], _register(_ProxyEmbedding(client))) as front,
            grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as caller,
        ):
            stub = embedding_grpc.EmbeddingServiceStub(caller)
            await stub.EmbedTexts(embedding_pb2.EmbedTextsRequest(texts=["a"]), timeout=3)
            assert _bounded(recorder.remaining, "EmbedTexts", 3.0)
            recorder.remaining.clear()
            await stub.EmbedTexts(embedding_pb2.EmbedTextsRequest(texts=["b"]))
        await channel.close()
    [(_, left)] = recorder.remaining
    assert left is not None
    assert 30.0 < left <= 61.0  # gRPC rounds the timeout it sends up


async def test_gateway_cache_lookup_gets_the_callers_deadline_not_its_own(tmp_path):
    """A workflow run with 4 s left: the gateway's cache lookup (configured for 30 s) reaches
    the embedding service with at most those 4 s."""
    recorder = _RecordingEmbedding()
    async with serving([EMBEDDING], _register(recorder)) as embedding:
        nowhere = f"127.0.0.1:{free_port()}"
        settings = load_settings(
            GatewaySettings,
            host="127.0.0.1",
            port=0,
            http_port=-1,
            research_addr=nowhere,
            reflection_addr=nowhere,
            embedding_addr=f"127.0.0.1:{embedding.port}",
            rank_timeout_seconds=30.0,
            store_path=tmp_path / "workflows.sqlite3",
        )
        telemetry = configure_telemetry(settings)
        gateway = ServiceServer(settings, UnwaitingGateway(settings, telemetry), telemetry)
        await gateway.start()
        await gateway.mark_ready()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                stub = workflow_grpc.WorkflowServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as failed:  # research is not there
                    await stub.RunReflectionWorkflow(
                        workflow_pb2.RunReflectionWorkflowRequest(
                            topic="dense retrieval",
                            # Not the library: its version would be asked of research first.
                            parameters=workflow_pb2.WorkflowParameters(
                                sources=[document_pb2.SOURCE_KIND_ARXIV]
                            ),
                        ),
                        timeout=4,
                    )
                assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
        finally:
            await gateway.stop(0)
    assert _bounded(recorder.remaining, "LookupCache", 4.0)
