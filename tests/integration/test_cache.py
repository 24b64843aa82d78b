"""The semantic cache through EmbeddingService over gRPC, with the real model: lookups by
meaning in two stages (candidates by cosine, then the verifier), the reasons a lookup reports,
invalidation by key, topic prefix and namespace prefix, bad input, persistence across restarts
of a real process, replicas sharing Redis."""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest
from google.protobuf import duration_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.embedding.v1 import embedding_service_pb2 as pb
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_devstack import Stack, StackPorts
from ponder_embedding.service import EmbeddingModule
from ponder_embedding.settings import EmbeddingSettings
from ponder_runtime import load_settings
from tests.conftest import InProcessStack, start_service
from tests.support.grpc_errors import bad_request_fields


QUESTION = "How do transformers use attention to model long sequences?"
PARAPHRASE = "Why do Transformers use attention for modelling long sequences?"


@pytest.fixture
async def cache_stub(stack: InProcessStack):
    """A stub to the in-process embedding service."""
    async with grpc.aio.insecure_channel(stack.address("embedding")) as channel:
        yield embedding_grpc.EmbeddingServiceStub(channel)


class TestLookupAndStore:
    """Store, then look up by exact text and by meaning."""

    async def test_exact_and_paraphrase_hits(self, cache_stub):
        """An exact repeat hits with similarity 1; a paraphrase hits with its cosine; an
        unrelated question misses; statistics count all three."""
        ns = "test/exact-and-paraphrase"
        stored = await cache_stub.StoreCache(
            pb.StoreCacheRequest(namespace=ns, text=QUESTION, payload=b"answer", payload_type="t")
        )
        assert len(stored.entry.key) == 32
        assert stored.entry.expire_time.seconds > stored.entry.create_time.seconds
        exact = await cache_stub.LookupCache(pb.LookupCacheRequest(namespace=ns, text=QUESTION))
        assert exact.hit
        assert exact.similarity == 1.0
        assert exact.entry.payload == b"answer"
        near = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace=ns, text=PARAPHRASE, similarity_threshold=0.8)
        )
        assert near.hit
        assert 0.8 <= near.similarity < 1.0
        far = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace=ns, text="What is a good sourdough starter?")
        )
        assert not far.hit
        assert far.similarity < 0.5
        stats = await cache_stub.GetCacheStats(pb.GetCacheStatsRequest(namespace=ns))
        assert (stats.entry_count, stats.hit_count, stats.miss_count) == (1, 2, 1)

    async def test_threshold_edge_with_the_real_model(self, cache_stub):
        """At exactly the paraphrase's similarity the lookup hits; just above, it misses."""
        ns = "test/threshold-edge"
        await cache_stub.StoreCache(pb.StoreCacheRequest(namespace=ns, text=QUESTION, payload=b"a"))
        probe = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace=ns, text=PARAPHRASE, similarity_threshold=0.9999)
        )
        similarity = probe.similarity
        assert not probe.hit
        at = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace=ns, text=PARAPHRASE, similarity_threshold=similarity)
        )
        above = await cache_stub.LookupCache(
            pb.LookupCacheRequest(
                namespace=ns, text=PARAPHRASE, similarity_threshold=similarity + 1e-4
            )
        )
        assert at.hit
        assert not above.hit

    async def test_ttl_expiry(self, cache_stub):
        """An entry stored with a short TTL hits before it and misses after it."""
        ns = "test/ttl"
        ttl = duration_pb2.Duration(nanos=600_000_000)
        await cache_stub.StoreCache(
            pb.StoreCacheRequest(namespace=ns, text=QUESTION, payload=b"a", ttl=ttl)
        )
        assert (
            await cache_stub.LookupCache(pb.LookupCacheRequest(namespace=ns, text=QUESTION))
        ).hit
        await asyncio.sleep(0.7)
        late = await cache_stub.LookupCache(pb.LookupCacheRequest(namespace=ns, text=QUESTION))
        assert not late.hit
        stats = await cache_stub.GetCacheStats(pb.GetCacheStatsRequest(namespace=ns))
        assert stats.expiration_count == 1

    async def test_two_stage_lookup_refuses_the_opposite_question(self, cache_stub, stack):
        """A negated question is a candidate (high cosine) but the verifier refuses it: a miss
        naming the candidate and the reason, counted by category and on the lookup's span; an
        acronym paraphrase far below today's threshold in raw cosine is served."""
        ns = "test/two-stage"
        stored = "Why does self-consistency improve reasoning?"
        await cache_stub.StoreCache(pb.StoreCacheRequest(namespace=ns, text=stored, payload=b"A"))
        await cache_stub.StoreCache(
            pb.StoreCacheRequest(
                namespace=ns, text="DPR for open domain question answering", payload=b"B"
            )
        )
        opposite = await cache_stub.LookupCache(
            pb.LookupCacheRequest(
                namespace=ns, text="Why does self-consistency fail to improve reasoning?"
            )
        )
        assert not opposite.hit
        assert opposite.similarity > 0.9
        assert opposite.candidate_text == stored
        assert opposite.verdict == pb.CACHE_VERDICT_REJECTED
        assert (opposite.reason, opposite.reason_category) == (
            'polarity differs ("fail")',
            "polarity",
        )
        paraphrase = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace=ns, text="dense passage retrieval for open-domain QA")
        )
        assert paraphrase.hit
        assert paraphrase.entry.payload == b"B"
        assert paraphrase.verdict == pb.CACHE_VERDICT_ACCEPTED
        assert paraphrase.reason == "same content words after normalisation"
        stats = await cache_stub.GetCacheStats(pb.GetCacheStatsRequest(namespace=ns))
        assert dict(stats.rejection_counts) == {"polarity": 1}
        refused = [
            span.attributes
            for span in stack.spans.get_finished_spans()
            if (span.attributes or {}).get("ponder.cache.candidate") == stored
        ]
        assert refused
        assert refused[-1]["ponder.cache.verdict"] == "rejected"
        assert refused[-1]["ponder.cache.reason"] == 'polarity differs ("fail")'
        assert (stats.hit_count, stats.miss_count) == (1, 1)

    async def test_miss_reasons_empty_and_below_threshold(self, cache_stub):
        """An empty namespace and an unrelated question are misses that say which."""
        ns = "test/miss-reasons"
        empty = await cache_stub.LookupCache(pb.LookupCacheRequest(namespace=ns, text=QUESTION))
        assert (empty.verdict, empty.reason) == (
            pb.CACHE_VERDICT_EMPTY,
            "no entry in the namespace",
        )
        await cache_stub.StoreCache(pb.StoreCacheRequest(namespace=ns, text=QUESTION, payload=b"a"))
        far = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace=ns, text="What is a good sourdough starter?")
        )
        assert far.verdict == pb.CACHE_VERDICT_BELOW_THRESHOLD
        assert far.candidate_text == QUESTION
        assert far.reason.startswith("best similarity ")

    async def test_invalidate_by_topic_prefix_and_namespace_prefix(self, cache_stub):
        """A topic prefix removes the entries it starts (case ignored) and nothing else; a
        namespace prefix removes every namespace under it."""
        for ns in ("test/prefix/a", "test/prefix/b"):
            for text in ("How does LoRA work?", "How does LoRA scale?", "What is RAG?"):
                await cache_stub.StoreCache(
                    pb.StoreCacheRequest(namespace=ns, text=text, payload=b"x")
                )
        by_topic = await cache_stub.InvalidateCache(
            pb.InvalidateCacheRequest(namespace="test/prefix/a", topic_prefix="how does lora")
        )
        assert by_topic.removed_count == 2
        kept = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace="test/prefix/a", text="What is RAG?")
        )
        assert kept.hit
        by_namespace = await cache_stub.InvalidateCache(
            pb.InvalidateCacheRequest(namespace="test/prefix/", namespace_prefix=True)
        )
        assert by_namespace.removed_count == 4
        stats = await cache_stub.GetCacheStats(pb.GetCacheStatsRequest(namespace="test/prefix/b"))
        assert stats.entry_count == 0

    async def test_invalidate_by_key_and_namespace(self, cache_stub):
        """InvalidateCache removes one entry by key, then the rest of the namespace."""
        ns = "test/invalidate"
        first = await cache_stub.StoreCache(
            pb.StoreCacheRequest(namespace=ns, text="first question", payload=b"1")
        )
        await cache_stub.StoreCache(
            pb.StoreCacheRequest(namespace=ns, text="second question", payload=b"2")
        )
        one = await cache_stub.InvalidateCache(
            pb.InvalidateCacheRequest(namespace=ns, key=first.entry.key)
        )
        rest = await cache_stub.InvalidateCache(pb.InvalidateCacheRequest(namespace=ns))
        assert (one.removed_count, rest.removed_count) == (1, 1)
        gone = await cache_stub.LookupCache(
            pb.LookupCacheRequest(namespace=ns, text="second question")
        )
        assert not gone.hit

    @pytest.mark.parametrize(
        ("method", "request_message", "fields"),
        [
            ("LookupCache", pb.LookupCacheRequest(namespace="", text="q"), {"namespace"}),
            (
                "LookupCache",
                pb.LookupCacheRequest(namespace="n", text="", similarity_threshold=1.5),
                {"text", "similarity_threshold"},
            ),
            ("StoreCache", pb.StoreCacheRequest(namespace="n", text="q"), {"payload"}),
            (
                "StoreCache",
                pb.StoreCacheRequest(
                    namespace="n", text="q", payload=b"x", ttl=duration_pb2.Duration(seconds=-5)
                ),
                {"ttl"},
            ),
            ("InvalidateCache", pb.InvalidateCacheRequest(namespace=" "), {"namespace"}),
            (
                "InvalidateCache",
                pb.InvalidateCacheRequest(namespace="n", topic_prefix="x" * 2001),
                {"topic_prefix"},
            ),
        ],
        ids=[
            "no-namespace",
            "no-text-bad-threshold",
            "no-payload",
            "negative-ttl",
            "blank-ns",
            "long-prefix",
        ],
    )
    async def test_bad_input(self, cache_stub, method, request_message, fields):
        """Malformed cache requests are INVALID_ARGUMENT naming each bad field."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(cache_stub, method)(request_message)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(caught.value) == fields


async def _store_and_lookup(stack: Stack, *, store: bool) -> pb.LookupCacheResponse:
    async with grpc.aio.insecure_channel(stack.service("embedding").address) as channel:
        stub = embedding_grpc.EmbeddingServiceStub(channel)
        token = stack.internal_metadata()
        if store:
            await stub.StoreCache(
                pb.StoreCacheRequest(namespace="durable", text=QUESTION, payload=b"kept"),
                metadata=token,
                timeout=30,
            )
        reply: pb.LookupCacheResponse = await stub.LookupCache(
            pb.LookupCacheRequest(namespace="durable", text=PARAPHRASE, similarity_threshold=0.8),
            metadata=token,
            timeout=30,
        )
        return reply


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_entries_survive_a_restart_of_the_process(tmp_path, stop_signal):
    """Stored entries are found again after the process restarts, whether it drained on
    SIGTERM or was killed with SIGKILL right after the store returned."""
    env = {"PONDER_CACHE_PATH": str(tmp_path / "cache.sqlite3")}
    ports = StackPorts.free()
    for attempt, store in enumerate((True, False)):
        stack = Stack(ports=ports, log_dir=tmp_path / f"run{attempt}", extra_env=env)
        stack.services = [s for s in stack.services if s.name == "embedding"]
        stack.start()
        embedding = stack.services[0]
        try:
            await stack.wait_ready(timeout=120)
            reply = await _store_and_lookup(stack, store=store)
            assert reply.hit, f"attempt {attempt}"
            assert reply.entry.payload == b"kept"
            if store:
                assert embedding.process is not None
                embedding.process.send_signal(stop_signal)
                code = await asyncio.to_thread(embedding.process.wait, 60)
                assert code == (0 if stop_signal == signal.SIGTERM else -signal.SIGKILL)
        finally:
            stack.stop()


async def test_two_replicas_share_one_cache_through_redis(redis_url, tmp_path):
    """An entry stored through one replica is found through another, exactly and by meaning;
    invalidation through the second reaches the first."""
    spans = InMemorySpanExporter()
    replicas = [
        await start_service(
            load_settings(
                EmbeddingSettings,
                host="127.0.0.1",
                port=0,
                cache_redis_url=redis_url,
                cache_path=tmp_path / f"unused-{i}.sqlite3",
            ),
            EmbeddingModule,
            spans,
        )
        for i in range(2)
    ]
    try:
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{r.port}") for r in replicas]
        first, second = (embedding_grpc.EmbeddingServiceStub(c) for c in channels)
        await first.StoreCache(
            pb.StoreCacheRequest(namespace="shared", text=QUESTION, payload=b"A")
        )
        exact = await second.LookupCache(pb.LookupCacheRequest(namespace="shared", text=QUESTION))
        near = await second.LookupCache(
            pb.LookupCacheRequest(namespace="shared", text=PARAPHRASE, similarity_threshold=0.8)
        )
        assert exact.hit
        assert exact.entry.payload == b"A"
        assert near.hit
        removed = await second.InvalidateCache(pb.InvalidateCacheRequest(namespace="shared"))
        assert removed.removed_count == 1
        after = await first.LookupCache(pb.LookupCacheRequest(namespace="shared", text=QUESTION))
        assert not after.hit
        for channel in channels:
            await channel.close()
    finally:
        for replica in replicas:
            await replica.stop(0)
