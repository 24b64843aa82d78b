"""The semantic cache in front of workflows, kept by the embedding service."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from opentelemetry.metrics import Meter

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.cache_signing import PayloadSigner, SignatureError, SigningKey
from ponder_gateway.metrics import (
    CACHE_LOOKUP_DURATION,
    CACHE_LOOKUPS,
    CACHE_REJECTED,
    CACHE_RESULT,
    no_op_meter,
)
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


class RecentAnswers:
    """First-level cache in the gateway process: exact repeats of a topic (same namespace)
    answered without the round trip to the embedding service. Bounded in size and age, so an
    entry another replica refreshed or that was invalidated is served at most `seconds` late."""

    def __init__(self, *, seconds: float, max_entries: int) -> None:
        self._seconds = seconds
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, CachedWorkflow]] = OrderedDict()

    def get(self, space: str, topic: str) -> CachedWorkflow | None:
        """The answer kept for exactly this topic, if still fresh."""
        found = self._entries.get((space, topic))
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._entries[(space, topic)]
            return None
        return found[1]

    def put(self, space: str, topic: str, answer: CachedWorkflow) -> None:
        """Keep an answer (the oldest goes when full); nothing when turned off."""
        if self._seconds <= 0 or self._max <= 0:
            return
        self._entries[(space, topic)] = (time.monotonic() + self._seconds, answer)
        self._entries.move_to_end((space, topic))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class WorkflowCache:
    """Lookups and stores of finished workflows by topic, through EmbeddingService, with the
    exact repeats of recent topics answered in-process."""

    def __init__(
        self,
        stub: embedding_grpc.EmbeddingServiceStub,
        *,
        threshold: float,
        ttl_seconds: float,
        timeout: float,
        recent: RecentAnswers | None = None,
        meter: Meter | None = None,
        signer: PayloadSigner | None = None,
    ) -> None:
        self._stub = stub
        meter = meter or no_op_meter()
        # access: results are signed on store and verified on lookup (cache_signing.py).
        self._signer = signer or PayloadSigner(SigningKey.ephemeral())
        self._rejected = meter.create_counter(
            CACHE_REJECTED,
            unit="{entry}",
            description="Cached results refused (a miss) because their signature did not verify.",
        )
        self._lookups = meter.create_counter(
            CACHE_LOOKUPS, unit="{lookup}", description="Cache lookups by result."
        )
        self._lookup_duration = meter.create_histogram(
            CACHE_LOOKUP_DURATION, unit="s", description="Cache lookup time by result."
        )
        self._threshold = threshold
        self._ttl_seconds = ttl_seconds
        self._timeout = timeout
        self._recent = recent or RecentAnswers(seconds=0, max_entries=0)

    async def lookup(self, topic: str, params: RunParameters) -> CachedWorkflow | None:
        """The cached workflow for a similar enough topic, or None on a miss."""
        started = time.perf_counter()
        space = namespace(params)
        recent = self._recent.get(space, topic)
        if recent is not None:
            self._count("hit", started)
            return recent
        try:
            found = await self._lookup(space, topic)
        except CacheUnavailableError:
            self._count("error", started)
            raise
        self._count("miss" if found is None else "hit", started)
        if found is not None:
            self._recent.put(space, topic, found)
        return found

    def _count(self, result: str, started: float) -> None:
        attributes = {CACHE_RESULT: result}
        self._lookups.add(1, attributes)
        self._lookup_duration.record(time.perf_counter() - started, attributes)

    async def _lookup(self, space: str, topic: str) -> CachedWorkflow | None:
        try:
            reply = await self._stub.LookupCache(
                embedding_pb2.LookupCacheRequest(
                    namespace=space, text=topic, similarity_threshold=self._threshold
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise CacheUnavailableError(f"{exc.code().name}: {exc.details()}") from exc
        if not reply.hit or reply.entry.payload_type != PAYLOAD_TYPE:
            return None
        entry = reply.entry
        try:
            body = self._signer.open(space, entry.text, entry.payload_type, entry.payload)
        except SignatureError as exc:
            self._rejected.add(1)
            logger.warning(
                "cached result rejected: served as a miss",
                extra={"namespace": space, "cache_key": entry.key, "reason": str(exc)},
            )
            return None
        return CachedWorkflow(workflow_pb2.Workflow.FromString(body), reply.similarity)

    async def store(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> None:
        """Keep a finished workflow under its topic."""
        ttl = duration_pb2.Duration()
        ttl.FromNanoseconds(int(self._ttl_seconds * 1e9))
        try:
            await self._stub.StoreCache(
                embedding_pb2.StoreCacheRequest(
                    namespace=namespace(params),
                    text=workflow.topic,
                    payload=self._signer.seal(
                        namespace(params),
                        workflow.topic,
                        PAYLOAD_TYPE,
                        workflow.SerializeToString(),
                    ),
                    payload_type=PAYLOAD_TYPE,
                    ttl=ttl,
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise CacheUnavailableError(f"{exc.code().name}: {exc.details()}") from exc
        kept = workflow_pb2.Workflow()
        kept.CopyFrom(workflow)
        self._recent.put(namespace(params), workflow.topic, CachedWorkflow(kept, 1.0))
