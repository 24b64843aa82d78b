"""SemanticCache logic: exact path, thresholds, TTL, LRU eviction, invalidation, statistics.

The embedding function here is a deterministic bag-of-words projection, so that similarity is
predictable; the real model is exercised through the service in tests/integration.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ponder_embedding.cache.core import SemanticCache
from ponder_embedding.cache.entries import entry_key
from ponder_embedding.cache.sqlite_backend import SqliteBackend
from tests.support.clock import Clock
from tests.support.vectors import DIM, bag_of_words


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
async def make_cache(tmp_path: Path, clock: Clock):
    """Build caches over SQLite files in tmp_path; closes them afterwards."""
    made: list[SemanticCache] = []

    async def make(
        name: str = "cache", *, max_entries: int = 100, threshold: float = 0.9
    ) -> SemanticCache:
        cache = SemanticCache(
            SqliteBackend(tmp_path / f"{name}.sqlite3"),
            bag_of_words,
            dimensions=DIM,
            max_entries=max_entries,
            default_ttl_seconds=3600.0,
            default_threshold=threshold,
            clock=clock,
        )
        await cache.start()
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()


class TestLookup:
    """Lookups: exact path first, then cosine similarity against the threshold."""

    async def test_exact_repeat_hits_without_embedding(self, make_cache):
        """An exact repeat (modulo case and spacing) hits with similarity 1 and never embeds."""
        cache = await make_cache()
        await cache.store("ns", "What is retrieval augmented generation", b"answer")
        calls: list[Sequence[str]] = []

        async def counting(texts: Sequence[str]) -> np.ndarray:
            calls.append(texts)
            return await bag_of_words(texts)

        cache._embed = counting
        result = await cache.lookup("ns", "  what is   Retrieval augmented generation ")
        assert result.hit
        assert result.exact
        assert result.similarity == 1.0
        assert result.entry is not None
        assert result.entry.payload == b"answer"
        assert calls == []

    async def test_similar_text_hits_and_dissimilar_misses(self, make_cache):
        """A near-identical question hits with its similarity; an unrelated one misses."""
        cache = await make_cache()
        await cache.store("ns", "how do transformers use attention layers", b"A")
        near = await cache.lookup("ns", "how do transformers use attention layers today", 0.8)
        far = await cache.lookup("ns", "best pasta recipe with tomatoes", 0.8)
        assert near.hit
        assert 0.8 <= near.similarity < 1.0
        assert not far.hit
        assert far.similarity < 0.8

    async def test_threshold_is_inclusive_at_the_edge(self, make_cache):
        """A similarity exactly at the threshold hits; a hair above it misses."""
        cache = await make_cache()
        await cache.store("ns", "dense passage retrieval for questions", b"A")
        probe = "dense passage retrieval for open questions"
        similarity = (await cache.lookup("ns", probe, 0.999999)).similarity
        assert 0 < similarity < 1
        assert (await cache.lookup("ns", probe, similarity)).hit
        assert not (await cache.lookup("ns", probe, min(1.0, similarity + 1e-6))).hit

    async def test_namespaces_never_match_each_other(self, make_cache):
        """An entry of one namespace is invisible in another, even for the same text."""
        cache = await make_cache()
        await cache.store("a", "same question", b"A")
        assert not (await cache.lookup("b", "same question")).hit
        assert (await cache.lookup("a", "same question")).hit

    async def test_storing_the_same_text_replaces_the_entry(self, make_cache):
        """A second store of a text replaces its payload (one entry, same key)."""
        cache = await make_cache()
        first = await cache.store("ns", "q", b"old")
        second = await cache.store("ns", "Q ", b"new")
        assert first.key == second.key == entry_key("ns", "q")
        assert len(cache) == 1
        result = await cache.lookup("ns", "q")
        assert result.entry is not None
        assert result.entry.payload == b"new"


class TestExpiryAndEviction:
    """TTL expiry, LRU eviction and invalidation."""

    async def test_entries_expire_at_their_ttl(self, make_cache, clock):
        """Before the TTL the entry hits; after it, it misses and counts as an expiration."""
        cache = await make_cache()
        await cache.store("ns", "short lived", b"A", ttl_seconds=10)
        clock.now += 9.9
        assert (await cache.lookup("ns", "short lived")).hit
        clock.now += 0.2
        assert not (await cache.lookup("ns", "short lived")).hit
        assert cache.stats("ns").expirations == 1
        assert len(cache) == 0

    async def test_sweep_removes_expired_entries_from_storage(self, make_cache, clock, tmp_path):
        """The sweep deletes expired entries from the backend too, so a restart won't load
        them."""
        cache = await make_cache("swept")
        await cache.store("ns", "old", b"A", ttl_seconds=5)
        await cache.store("ns", "new", b"B", ttl_seconds=500)
        clock.now += 6
        assert await cache.sweep() == 1
        reopened = await make_cache("swept")
        assert len(reopened) == 1

    async def test_least_recently_used_entry_is_evicted_first(self, make_cache):
        """Beyond max_entries, the entry not used for the longest time goes."""
        cache = await make_cache(max_entries=3)
        for text in ("alpha one", "beta two", "gamma three"):
            await cache.store("ns", text, text.encode())
        assert (await cache.lookup("ns", "alpha one")).hit  # alpha is now most recent
        await cache.store("ns", "delta four", b"d")
        assert len(cache) == 3
        assert not (await cache.lookup("ns", "beta two")).hit
        for text in ("alpha one", "gamma three", "delta four"):
            assert (await cache.lookup("ns", text)).hit, text
        assert cache.stats().evictions == 1

    async def test_invalidate_by_key_and_by_namespace(self, make_cache):
        """Invalidation removes one entry by key, or a whole namespace, and says how many."""
        cache = await make_cache()
        entry = await cache.store("ns", "one", b"1")
        await cache.store("ns", "two", b"2")
        await cache.store("other", "three", b"3")
        assert await cache.invalidate("ns", entry.key) == 1
        assert await cache.invalidate("ns", entry.key) == 0
        assert not (await cache.lookup("ns", "one")).hit
        assert await cache.invalidate("ns") == 1
        assert (await cache.lookup("other", "three")).hit
        assert len(cache) == 1

    async def test_invalidate_ignores_a_key_of_another_namespace(self, make_cache):
        """A key only invalidates within its own namespace."""
        cache = await make_cache()
        entry = await cache.store("ns", "one", b"1")
        assert await cache.invalidate("other", entry.key) == 0
        assert (await cache.lookup("ns", "one")).hit


class TestPersistenceAndStats:
    """The SQLite backend and the counters."""

    async def test_entries_and_hit_counts_survive_a_reopen(self, make_cache):
        """A new cache over the same file finds every unexpired entry and its hit count."""
        cache = await make_cache("durable")
        await cache.store("ns", "kept question", b"kept", payload_type="text/plain")
        await cache.lookup("ns", "kept question")
        await cache.flush()
        reopened = await make_cache("durable")
        result = await reopened.lookup("ns", "kept question")
        assert result.entry is not None
        assert result.entry.payload == b"kept"
        assert result.entry.payload_type == "text/plain"
        assert result.entry.hit_count == 2

    async def test_stats_count_hits_and_misses(self, make_cache):
        """Hits, misses and the ratio are counted per namespace and overall."""
        cache = await make_cache()
        await cache.store("ns", "q", b"a")
        await cache.lookup("ns", "q")
        await cache.lookup("ns", "completely different words here")
        await cache.lookup("empty", "anything")
        ns, overall = cache.stats("ns"), cache.stats()
        assert (ns.hits, ns.misses, ns.entries) == (1, 1, 1)
        assert ns.hit_ratio == 0.5
        assert (overall.hits, overall.misses) == (1, 2)
