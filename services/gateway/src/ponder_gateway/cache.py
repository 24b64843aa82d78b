"""The semantic cache in front of workflows, kept by the embedding service."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.parameters import RunParameters


logger = logging.getLogger(__name__)

PAYLOAD_TYPE = "ponder.workflow.v1.Workflow"


@dataclass(frozen=True, slots=True)
class CachedWorkflow:
    """A cache hit: the earlier workflow and how similar its topic was."""

    workflow: workflow_pb2.Workflow
    similarity: float


class CacheUnavailableError(Exception):
    """The embedding service could not answer; the message says how."""


def namespace(params: RunParameters) -> str:
    """One namespace per workflow kind and result-shaping parameters (not the cache policy):
    a cached answer is only reused for a request that would have produced the same kind of
    answer."""
    shape = (
        f"{sorted(params.sources)}|{params.max_sources}|{params.max_iterations}|"
        f"{params.score_threshold:g}"
    )
    digest = hashlib.sha256(shape.encode()).hexdigest()[:12]
    kind = workflow_pb2.WorkflowKind.Name(params.kind).removeprefix("WORKFLOW_KIND_").lower()
    return f"workflow/{kind}/v1/{digest}"


class WorkflowCache:
    """Lookups and stores of finished workflows by topic, through EmbeddingService."""

    def __init__(
        self,
        stub: embedding_grpc.EmbeddingServiceStub,
        *,
        threshold: float,
        ttl_seconds: float,
        timeout: float,
    ) -> None:
        self._stub = stub
        self._threshold = threshold
        self._ttl_seconds = ttl_seconds
        self._timeout = timeout

    async def lookup(self, topic: str, params: RunParameters) -> CachedWorkflow | None:
        """The cached workflow for a similar enough topic, or None on a miss."""
        try:
            reply = await self._stub.LookupCache(
                embedding_pb2.LookupCacheRequest(
                    namespace=namespace(params), text=topic, similarity_threshold=self._threshold
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise CacheUnavailableError(f"{exc.code().name}: {exc.details()}") from exc
        if not reply.hit or reply.entry.payload_type != PAYLOAD_TYPE:
            return None
        return CachedWorkflow(
            workflow_pb2.Workflow.FromString(reply.entry.payload), reply.similarity
        )

    async def store(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> None:
        """Keep a finished workflow under its topic."""
        ttl = duration_pb2.Duration()
        ttl.FromNanoseconds(int(self._ttl_seconds * 1e9))
        try:
            await self._stub.StoreCache(
                embedding_pb2.StoreCacheRequest(
                    namespace=namespace(params),
                    text=workflow.topic,
                    payload=workflow.SerializeToString(),
                    payload_type=PAYLOAD_TYPE,
                    ttl=ttl,
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise CacheUnavailableError(f"{exc.code().name}: {exc.details()}") from exc
