"""SourceCache: TTL (fake clock), expiry, LRU bound, failures not cached, single flight, and a
timed-out waiter that leaves the shared fetch running."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.source_cache import SourceCache


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _docs(name: str) -> list[FoundDocument]:
    return [FoundDocument(id=f"library:{name}", title=name, summary="s", source=SourceKind.LIBRARY)]


class Upstream:
    """A fetch function factory that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def fetch(self, name: str) -> Callable[[], Awaitable[list[FoundDocument]]]:
        async def run() -> list[FoundDocument]:
            self.calls.append(name)
            return _docs(name)

        return run


class TestTtl:
    async def test_hit_within_ttl(self) -> None:
        """A second get within the TTL returns the stored documents without a fetch."""
        clock, upstream = FakeClock(), Upstream()
        cache = SourceCache(ttl=10, max_entries=5, clock=clock)
        first, first_cached = await cache.get("k", upstream.fetch("k"))
        clock.now += 9.99
        second, second_cached = await cache.get("k", upstream.fetch("k"))
        assert (first_cached, second_cached) == (False, True)
        assert second is first
        assert upstream.calls == ["k"]
        assert cache.upstream_calls == 1

    async def test_expiry(self) -> None:
        """At the TTL the entry is stale: the next get fetches again."""
        clock, upstream = FakeClock(), Upstream()
        cache = SourceCache(ttl=10, max_entries=5, clock=clock)
        await cache.get("k", upstream.fetch("k"))
        clock.now += 10.0
        _, cached = await cache.get("k", upstream.fetch("k"))
        assert cached is False
        assert upstream.calls == ["k", "k"]
        assert cache.upstream_calls == 2
        _, cached = await cache.get("k", upstream.fetch("k"))  # the refreshed entry is stored
        assert cached is True

    async def test_ttl_zero_never_stores(self) -> None:
        """With ttl=0 every sequential get is a fetch."""
        upstream = Upstream()
        cache = SourceCache(ttl=0, max_entries=5, clock=FakeClock())
        results = [await cache.get("k", upstream.fetch("k")) for _ in range(3)]
        assert [cached for _, cached in results] == [False, False, False]
        assert cache.upstream_calls == 3

    async def test_keys_are_separate(self) -> None:
        """Different keys have different entries."""
        upstream = Upstream()
        cache = SourceCache(ttl=10, max_entries=5, clock=FakeClock())
        a, _ = await cache.get(("arxiv", "q1"), upstream.fetch("a"))
        b, _ = await cache.get(("arxiv", "q2"), upstream.fetch("b"))
        assert (a[0].id, b[0].id) == ("library:a", "library:b")
        assert upstream.calls == ["a", "b"]


class TestLru:
    async def test_least_recently_used_is_evicted(self) -> None:
        """Beyond max_entries the least recently used key goes; a hit refreshes recency."""
        upstream = Upstream()
        cache = SourceCache(ttl=100, max_entries=2, clock=FakeClock())
        await cache.get("a", upstream.fetch("a"))
        await cache.get("b", upstream.fetch("b"))
        assert (await cache.get("a", upstream.fetch("a")))[1] is True  # a is now most recent
        await cache.get("c", upstream.fetch("c"))  # evicts b
        assert (await cache.get("a", upstream.fetch("a")))[1] is True
        assert (await cache.get("c", upstream.fetch("c")))[1] is True
        assert (await cache.get("b", upstream.fetch("b")))[1] is False
        assert upstream.calls == ["a", "b", "c", "b"]


class TestFailures:
    async def test_failures_are_not_cached(self) -> None:
        """A failed fetch raises to its caller and the next get fetches again."""
        attempts = 0

        async def flaky() -> list[FoundDocument]:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise ConnectionError("upstream down")
            return _docs("ok")

        cache = SourceCache(ttl=100, max_entries=5, clock=FakeClock())
        with pytest.raises(ConnectionError, match="upstream down"):
            await cache.get("k", flaky)
        docs, cached = await cache.get("k", flaky)
        assert (docs[0].id, cached) == ("library:ok", False)
        assert attempts == 2
        assert cache.upstream_calls == 2

    async def test_concurrent_waiters_share_the_failure(self) -> None:
        """Waiters of a failing shared fetch all get its exception; it ran once."""
        release = asyncio.Event()
        calls = 0

        async def failing() -> list[FoundDocument]:
            nonlocal calls
            calls += 1
            await release.wait()
            raise RuntimeError("boom")

        cache = SourceCache(ttl=100, max_entries=5, clock=FakeClock())
        waiters = [asyncio.create_task(cache.get("k", failing)) for _ in range(3)]
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) and str(r) == "boom" for r in results), results
        assert calls == 1


class TestSingleFlight:
    @pytest.mark.parametrize("ttl", [0.0, 60.0], ids=["no-ttl", "ttl"])
    async def test_concurrent_identical_gets_fetch_once(self, ttl: float) -> None:
        """N concurrent gets of one key make one upstream call; all get its documents, every
        one but the first marked shared."""
        release = asyncio.Event()
        calls = 0

        async def slow() -> list[FoundDocument]:
            nonlocal calls
            calls += 1
            await release.wait()
            return _docs("shared")

        cache = SourceCache(ttl=ttl, max_entries=5, clock=FakeClock())
        waiters = [asyncio.create_task(cache.get("k", slow)) for _ in range(5)]
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*waiters)
        assert calls == 1
        assert cache.upstream_calls == 1
        assert [shared for _, shared in results] == [False, True, True, True, True]
        assert all(docs is results[0][0] for docs, _ in results)
        assert results[0][0][0].id == "library:shared"

    async def test_timed_out_waiter_does_not_cancel_the_fetch(self) -> None:
        """A waiter cancelled by its own timeout leaves; the shared fetch keeps running and
        the other waiter (and, within the TTL, later callers) get its result."""
        release = asyncio.Event()
        finished = cancelled = False

        async def slow() -> list[FoundDocument]:
            nonlocal finished, cancelled
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancelled = True
                raise
            finished = True
            return _docs("late")

        cache = SourceCache(ttl=60, max_entries=5, clock=FakeClock())

        async def impatient() -> None:
            async with asyncio.timeout(0.05):
                await cache.get("k", slow)

        first = asyncio.create_task(impatient())
        await asyncio.sleep(0)
        patient = asyncio.create_task(cache.get("k", slow))
        with pytest.raises(TimeoutError):
            await first
        assert not patient.done()
        release.set()
        docs, shared = await patient
        assert (docs[0].id, shared) == ("library:late", True)
        assert finished
        assert not cancelled
        assert (await cache.get("k", slow))[1] is True
        assert cache.upstream_calls == 1

    async def test_fetch_completes_when_every_waiter_left(self) -> None:
        """Even with all waiters gone, the fetch completes and its result is cached."""
        release = asyncio.Event()
        upstream = Upstream()

        async def slow() -> list[FoundDocument]:
            await release.wait()
            return await upstream.fetch("orphan")()

        cache = SourceCache(ttl=60, max_entries=5, clock=FakeClock())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await cache.get("k", slow)
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        docs, cached = await cache.get("k", slow)
        assert (docs[0].id, cached) == ("library:orphan", True)
        assert upstream.calls == ["orphan"]
