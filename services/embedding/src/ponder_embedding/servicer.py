"""gRPC servicer of ponder.embedding.v1.EmbeddingService."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from opentelemetry import trace
from opentelemetry.metrics import Meter, NoOpMeter

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_embedding.cache.core import LookupResult
from ponder_embedding.cache.entries import CacheEntry
from ponder_embedding.engine import Engine
from ponder_embedding.settings import EmbeddingSettings
from ponder_runtime import RequestValidator, UnavailableError
from ponder_runtime.attributes import (
    CACHE_CANDIDATE,
    CACHE_REASON,
    CACHE_REASON_CATEGORY,
    CACHE_RESULT,
    CACHE_SIMILARITY,
    CACHE_VERDICT,
)
from ponder_runtime.metrics import EMBEDDING_CACHE_LOOKUPS
from ponder_runtime.protobuf import timestamp


MAX_NAMESPACE_LENGTH = 256
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
MAX_TOPIC_PREFIX_LENGTH = 2000
VERDICTS = {
    "exact": embedding_pb2.CACHE_VERDICT_EXACT,
    "accepted": embedding_pb2.CACHE_VERDICT_ACCEPTED,
    "rejected": embedding_pb2.CACHE_VERDICT_REJECTED,
    "below_threshold": embedding_pb2.CACHE_VERDICT_BELOW_THRESHOLD,
    "empty": embedding_pb2.CACHE_VERDICT_EMPTY,
}


def entry_to_proto(entry: CacheEntry, *, with_payload: bool = True) -> embedding_pb2.CacheEntry:
    """ponder.embedding.v1.CacheEntry (times from Unix seconds)."""
    return embedding_pb2.CacheEntry(
        key=entry.key,
        namespace=entry.namespace,
        text=entry.text,
        payload=(entry.payload or b"") if with_payload else b"",
        payload_type=entry.payload_type,
        create_time=timestamp_from_unix(entry.create_time),
        expire_time=timestamp_from_unix(entry.expire_time),
        hit_count=entry.hit_count,
    )


def timestamp_from_unix(seconds: float) -> timestamp_pb2.Timestamp:
    """A Timestamp of Unix time `seconds`."""
    return timestamp(dt.datetime.fromtimestamp(seconds, tz=dt.UTC))


class EmbeddingServicer(embedding_grpc.EmbeddingServiceServicer):
    """Embeds, ranks and caches; UNAVAILABLE until the model is loaded."""

    def __init__(self, settings: EmbeddingSettings, meter: Meter | None = None) -> None:
        self._settings = settings
        self.engine: Engine | None = None
        meter = meter or NoOpMeter("ponder_embedding")
        self._lookups = meter.create_counter(
            EMBEDDING_CACHE_LOOKUPS,
            unit="{lookup}",
            description="Semantic-cache lookups by verdict and rejection reason category.",
        )

    def _ready(self) -> Engine:
        if self.engine is None:
            raise UnavailableError("the embedding model is still loading", retry_after_seconds=2)
        return self.engine

    def _texts(self, check: RequestValidator, field: str, texts: list[str]) -> None:
        for index, text in enumerate(texts):
            check.text(f"{field}[{index}]", text, max_length=self._settings.max_text_length)

    async def EmbedTexts(
        self, request: embedding_pb2.EmbedTextsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedding_pb2.EmbedTextsResponse:
        """Embed 1 to max_texts texts."""
        check = RequestValidator()
        check.count("texts", request.texts, low=1, high=self._settings.max_texts)
        self._texts(check, "texts", list(request.texts))
        check.check()
        engine = self._ready()
        vectors = await engine.embed(request.texts, normalized=request.normalize)
        return embedding_pb2.EmbedTextsResponse(
            embeddings=[embedding_pb2.Embedding(values=row.tolist()) for row in vectors],
            model=engine.model.name,
            dimensions=engine.model.dimensions,
        )

    async def RankDocuments(
        self,
        request: embedding_pb2.RankDocumentsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> embedding_pb2.RankDocumentsResponse:
        """Rank candidates by cosine similarity to the query."""
        check = RequestValidator()
        check.text("query", request.query, max_length=self._settings.max_text_length)
        check.count("candidates", request.candidates, low=1, high=self._settings.max_texts)
        for index, candidate in enumerate(request.candidates):
            check.text(f"candidates[{index}].id", candidate.id, max_length=512)
            check.text(
                f"candidates[{index}].text",
                candidate.text,
                max_length=self._settings.max_text_length,
            )
        check.number(
            "top_k", request.top_k, low=1, high=self._settings.max_texts, zero_means_default=True
        )
        check.check()
        engine = self._ready()
        vectors = await engine.embed(
            [request.query, *(c.text for c in request.candidates)], normalized=True
        )
        scores = vectors[1:] @ vectors[0]
        order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
        if request.top_k:
            order = order[: request.top_k]
        return embedding_pb2.RankDocumentsResponse(
            results=[
                embedding_pb2.RankedCandidate(
                    id=request.candidates[i].id, index=i, score=float(scores[i])
                )
                for i in order
            ],
            model=engine.model.name,
        )

    def _check_namespace(self, check: RequestValidator, namespace: str) -> None:
        check.text("namespace", namespace, max_length=MAX_NAMESPACE_LENGTH)

    async def LookupCache(
        self, request: embedding_pb2.LookupCacheRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedding_pb2.LookupCacheResponse:
        """Exact text first, then the most similar entry at or above the threshold."""
        check = RequestValidator()
        self._check_namespace(check, request.namespace)
        check.text("text", request.text, max_length=self._settings.max_text_length)
        check.number(
            "similarity_threshold",
            request.similarity_threshold,
            low=0.0,
            high=1.0,
            zero_means_default=True,
        )
        check.check()
        cache = self._ready().cache
        result = await cache.lookup(
            request.namespace, request.text, request.similarity_threshold or None
        )
        self._observe(result)
        reply = embedding_pb2.LookupCacheResponse(
            hit=result.hit,
            similarity=result.similarity,
            candidate_text=result.candidate_text,
            candidate_key=result.candidate_key,
            verdict=VERDICTS[result.verdict],
            reason=result.reason,
            reason_category=result.category,
        )
        if result.entry is not None:
            reply.entry.CopyFrom(entry_to_proto(result.entry))
        return reply

    def _observe(self, result: LookupResult) -> None:
        """The lookup's verdict on the RPC's span and in the lookup counter."""
        trace.get_current_span().set_attributes(
            {
                CACHE_RESULT: "hit" if result.hit else "miss",
                CACHE_SIMILARITY: result.similarity,
                CACHE_VERDICT: result.verdict,
                CACHE_REASON: result.reason,
                CACHE_REASON_CATEGORY: result.category,
                CACHE_CANDIDATE: result.candidate_text,
            }
        )
        self._lookups.add(
            1, {CACHE_VERDICT: result.verdict, CACHE_REASON_CATEGORY: result.category}
        )

    async def StoreCache(
        self, request: embedding_pb2.StoreCacheRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedding_pb2.StoreCacheResponse:
        """Store a payload under a text; durable when this returns."""
        check = RequestValidator()
        self._check_namespace(check, request.namespace)
        check.text("text", request.text, max_length=self._settings.max_text_length)
        if not request.payload:
            check.add("payload", "must not be empty")
        elif len(request.payload) > MAX_PAYLOAD_BYTES:
            check.add("payload", f"must be at most {MAX_PAYLOAD_BYTES} bytes")
        check.text("payload_type", request.payload_type, max_length=256, required=False)
        ttl = None
        if request.HasField("ttl"):
            ttl = request.ttl.ToNanoseconds() / 1e9
            check.number(
                "ttl",
                ttl,
                low=0.001,
                high=self._settings.cache_max_ttl_seconds,
                zero_means_default=False,
            )
        check.check()
        entry = await self._ready().cache.store(
            request.namespace,
            request.text,
            request.payload,
            payload_type=request.payload_type,
            ttl_seconds=ttl,
        )
        return embedding_pb2.StoreCacheResponse(entry=entry_to_proto(entry, with_payload=False))

    async def InvalidateCache(
        self,
        request: embedding_pb2.InvalidateCacheRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> embedding_pb2.InvalidateCacheResponse:
        """Remove one entry, the entries under a topic prefix, or whole namespaces."""
        check = RequestValidator()
        self._check_namespace(check, request.namespace)
        check.text("key", request.key, max_length=128, required=False)
        check.text(
            "topic_prefix",
            request.topic_prefix,
            max_length=MAX_TOPIC_PREFIX_LENGTH,
            required=False,
        )
        check.check()
        removed = await self._ready().cache.invalidate(
            request.namespace,
            request.key,
            topic_prefix=request.topic_prefix,
            namespace_prefix=request.namespace_prefix,
        )
        return embedding_pb2.InvalidateCacheResponse(removed_count=removed)

    async def GetCacheStats(
        self,
        request: embedding_pb2.GetCacheStatsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> embedding_pb2.GetCacheStatsResponse:
        """Counters of this replica's cache, for a namespace or all."""
        check = RequestValidator()
        check.text("namespace", request.namespace, max_length=MAX_NAMESPACE_LENGTH, required=False)
        check.check()
        stats = self._ready().cache.stats(request.namespace)
        return embedding_pb2.GetCacheStatsResponse(
            entry_count=stats.entries,
            hit_count=stats.hits,
            miss_count=stats.misses,
            hit_ratio=stats.hit_ratio,
            eviction_count=stats.evictions,
            expiration_count=stats.expirations,
            rejection_counts=stats.rejections,
        )
