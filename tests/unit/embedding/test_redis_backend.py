"""The Redis cache backend, against a real redis-server: storage, expiry, and replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest
import redis.asyncio as aioredis

from ponder_embedding.cache.entries import CacheChange, CacheEntry, entry_key
from ponder_embedding.cache.redis_backend import RedisBackend, RedisUnavailableError
from tests.conftest import free_port


DIM = 384
NewBackend = Callable[..., Awaitable[RedisBackend]]


def unit_vector(seed: int) -> np.ndarray:
    """A random float32 unit vector of dimension 384."""
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def make_entry(
    text: str,
    namespace: str = "default",
    *,
    ttl: float = 3600.0,
    seed: int = 0,
    payload: bytes = b"\x00\xffpayload",
) -> CacheEntry:
    """An entry for `text` created now and expiring `ttl` seconds later."""
    now = time.time()
    return CacheEntry(
        key=entry_key(namespace, text),
        namespace=namespace,
        text=text,
        payload=payload,
        payload_type="ponder.test.v1.Answer",
        vector=unit_vector(seed),
        create_time=now,
        expire_time=now + ttl,
        hit_count=3,
        last_access=now - 1.25,
    )


def assert_same(actual: CacheEntry | None, expected: CacheEntry) -> None:
    """`actual` equals `expected` field by field, the vector byte for byte."""
    assert actual is not None
    assert actual.key == expected.key
    assert actual.namespace == expected.namespace
    assert actual.text == expected.text
    assert actual.payload == expected.payload
    assert actual.payload_type == expected.payload_type
    assert actual.create_time == expected.create_time
    assert actual.expire_time == expected.expire_time
    assert actual.hit_count == expected.hit_count
    assert actual.last_access == expected.last_access
    assert actual.vector.dtype == np.float32
    assert actual.vector.shape == (DIM,)
    assert actual.vector.tobytes() == expected.vector.astype(np.float32).tobytes()


@pytest.fixture
async def new_backend(redis_url: str) -> AsyncIterator[NewBackend]:
    """Connected RedisBackends on the (flushed) test server; closed afterwards."""
    backends: list[RedisBackend] = []

    async def create(**kwargs: str) -> RedisBackend:
        backend = await RedisBackend.create(redis_url, **kwargs)
        backends.append(backend)
        return backend

    yield create
    for backend in backends:
        await backend.close()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the test server, to look at what the backend stored."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_put_get_round_trip_preserves_every_field(new_backend: NewBackend) -> None:
    """get returns what put stored: every field, non-ASCII text and the vector bytes exactly."""
    backend = await new_backend()
    entry = make_entry("Qu'est-ce qu'un agent réflexif ? 🤔", "ns-é", payload=bytes(range(256)))
    await backend.put(entry)
    assert_same(await backend.get(entry.key), entry)
    assert await backend.get(entry_key("ns-é", "something else")) is None


async def test_put_replaces_an_entry(new_backend: NewBackend) -> None:
    """Putting the same key again replaces the stored entry."""
    backend = await new_backend()
    first = make_entry("what is RAG?", seed=1)
    second = make_entry("What is  RAG?", seed=2, payload=b"new answer")
    assert first.key == second.key
    await backend.put(first)
    await backend.put(second)
    assert_same(await backend.get(first.key), second)
    assert [e.key for e in await backend.load_all(time.time())] == [first.key]


async def test_load_all_skips_expired_and_redis_expires_them(
    new_backend: NewBackend, raw: aioredis.Redis
) -> None:
    """load_all leaves out entries expired at `now`; Redis drops them by itself at expire_time,
    and a later put prunes them from their namespace's key set."""
    backend = await new_backend()
    short = make_entry("short-lived", ttl=1.5, seed=1)
    long = make_entry("long-lived", ttl=3600, seed=2)
    await backend.put(short)
    await backend.put(long)
    assert {e.key for e in await backend.load_all(time.time())} == {short.key, long.key}
    assert [e.key for e in await backend.load_all(time.time() + 2)] == [long.key]

    await asyncio.sleep(1.7)
    assert await raw.exists(f"ponder:cache:e:{short.key}") == 0
    assert await backend.get(short.key) is None
    loaded = await backend.load_all(time.time())
    assert len(loaded) == 1
    assert_same(loaded[0], long)

    await backend.put(make_entry("another", seed=3))
    members = await raw.zrange("ponder:cache:ns:default", 0, -1)
    assert short.key.encode() not in members
    assert long.key.encode() in members


async def test_load_all_scans_many_entries(new_backend: NewBackend) -> None:
    """load_all returns every live entry when there are more than one SCAN batch of them."""
    backend = await new_backend()
    entries = [make_entry(f"text {i}", f"ns{i % 3}", seed=i) for i in range(1200)]
    for entry in entries:
        await backend.put(entry)
    loaded = {e.key: e for e in await backend.load_all(time.time())}
    assert set(loaded) == {e.key for e in entries}
    assert_same(loaded[entries[777].key], entries[777])


async def test_delete_removes_only_the_given_keys(new_backend: NewBackend) -> None:
    """delete removes the given entries, ignores missing keys and keeps the rest."""
    backend = await new_backend()
    a, b = make_entry("a", seed=1), make_entry("b", seed=2)
    await backend.put(a)
    await backend.put(b)
    await backend.delete([a.key, entry_key("default", "never stored")])
    await backend.delete([])
    assert await backend.get(a.key) is None
    assert_same(await backend.get(b.key), b)
    assert [e.key for e in await backend.load_all(time.time())] == [b.key]


async def test_delete_namespace_returns_its_keys_and_spares_others(
    new_backend: NewBackend,
) -> None:
    """delete_namespace removes every entry of one namespace, returns their keys (not those
    deleted earlier), and leaves other namespaces untouched."""
    backend = await new_backend()
    doomed = [make_entry(f"doomed {i}", "docs", seed=i) for i in range(5)]
    kept = [make_entry(f"kept {i}", "other", seed=10 + i) for i in range(3)]
    for entry in doomed + kept:
        await backend.put(entry)
    await backend.delete([doomed[0].key])

    removed = await backend.delete_namespace("docs")

    assert sorted(removed) == sorted(e.key for e in doomed[1:])
    assert {e.key for e in await backend.load_all(time.time())} == {e.key for e in kept}
    assert await backend.delete_namespace("docs") == []
    assert await backend.delete_namespace("never used") == []


async def test_replica_sees_another_replicas_puts_and_deletes(new_backend: NewBackend) -> None:
    """Two backends on one Redis act as two replicas: B.changes() reports A's put (the full
    entry) and A's delete (a removal); A's changes() never echoes its own writes."""
    a, b = await new_backend(), await new_backend()
    assert a.origin != b.origin
    entry = make_entry("shared question", seed=5)

    await a.put(entry)
    changes = await b.changes()
    assert [c.key for c in changes] == [entry.key]
    assert_same(changes[0].entry, entry)
    assert_same(await b.get(entry.key), entry)
    assert await a.changes() == []
    assert await b.changes() == []  # reported once

    await a.delete([entry.key])
    assert await b.changes() == [CacheChange(entry.key, None)]
    assert await a.changes() == []


async def test_replica_sees_namespace_deletion_and_own_writes_are_skipped(
    new_backend: NewBackend,
) -> None:
    """B.changes() reports each key of A's delete_namespace as a removal, and B's own puts in
    between are not reported back to B."""
    a, b = await new_backend(), await new_backend()
    entries = [make_entry(f"q{i}", "docs", seed=i) for i in range(3)]
    for entry in entries:
        await a.put(entry)
    mine = make_entry("b's own", "other", seed=9)
    await b.put(mine)
    assert {c.key for c in await b.changes()} == {e.key for e in entries}
    assert [c.key for c in await a.changes()] == [mine.key]

    await a.delete_namespace("docs")
    changes = await b.changes()
    assert {c.key for c in changes} == {e.key for e in entries}
    assert all(c.entry is None for c in changes)


async def test_changes_report_each_key_once_in_its_current_state(new_backend: NewBackend) -> None:
    """Several changes of one key since the last call are one change: the latest state."""
    a, b = await new_backend(), await new_backend()
    first, second = make_entry("q", seed=1), make_entry("q", seed=2, payload=b"v2")
    other = make_entry("other", seed=3)
    await a.put(first)
    await a.put(other)
    await a.put(second)
    changes = await b.changes()
    assert [c.key for c in changes] == [other.key, first.key]
    assert_same(changes[1].entry, second)

    await a.put(first)
    await a.delete([first.key])
    assert await b.changes() == [CacheChange(first.key, None)]


async def test_change_for_an_entry_gone_meanwhile_is_a_removal(
    new_backend: NewBackend, raw: aioredis.Redis
) -> None:
    """A put whose entry has disappeared (expired or deleted) before changes() is a removal."""
    a, b = await new_backend(), await new_backend()
    entry = make_entry("fleeting", seed=1)
    await a.put(entry)
    await raw.delete(f"ponder:cache:e:{entry.key}")  # as Redis does when it expires
    assert await b.changes() == [CacheChange(entry.key, None)]


async def test_record_hits_increments_and_does_not_resurrect(
    new_backend: NewBackend, raw: aioredis.Redis
) -> None:
    """record_hits adds to hit_count and raises last_access (never lowers it); a deleted key
    stays deleted."""
    backend = await new_backend()
    live, gone = make_entry("live", seed=1), make_entry("gone", seed=2)
    await backend.put(live)
    await backend.put(gone)
    await backend.delete([gone.key])
    later = live.last_access + 100

    await backend.record_hits([(live.key, 2, later), (gone.key, 5, later)])
    await backend.record_hits([(live.key, 1, live.last_access)])
    await backend.record_hits([])

    stored = await backend.get(live.key)
    assert stored is not None
    assert stored.hit_count == live.hit_count + 3
    assert stored.last_access == later
    assert await backend.get(gone.key) is None
    assert await raw.exists(f"ponder:cache:e:{gone.key}") == 0
    assert await raw.pttl(f"ponder:cache:e:{live.key}") > 0  # still expires


async def test_late_backend_loads_earlier_puts_then_only_newer_changes(
    new_backend: NewBackend,
) -> None:
    """A backend connected after some puts finds them in load_all, and changes() then reports
    only what happened after it connected."""
    a = await new_backend()
    early = [make_entry(f"early {i}", seed=i) for i in range(3)]
    for entry in early:
        await a.put(entry)

    late = await new_backend()
    assert {e.key for e in await late.load_all(time.time())} == {e.key for e in early}
    assert await late.changes() == []

    newer = make_entry("newer", seed=7)
    await a.put(newer)
    await a.delete([early[0].key])
    changes = await late.changes()
    assert [c.key for c in changes] == [newer.key, early[0].key]
    assert_same(changes[0].entry, newer)
    assert changes[1].entry is None


async def test_prefixes_keep_caches_apart(new_backend: NewBackend) -> None:
    """Backends with different prefixes on one Redis share neither entries nor changes."""
    a = await new_backend(prefix="ponder:a")
    b = await new_backend(prefix="ponder:b")
    entry = make_entry("isolated", seed=1)
    await a.put(entry)
    assert await b.get(entry.key) is None
    assert await b.load_all(time.time()) == []
    assert await b.changes() == []
    assert await b.delete_namespace("default") == []
    assert_same(await a.get(entry.key), entry)


async def test_connect_to_unreachable_redis_raises_clearly() -> None:
    """connect() to a port nothing listens on raises RedisUnavailableError naming the URL
    (without its password)."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    backend = RedisBackend(url)
    with pytest.raises(RedisUnavailableError, match=r"cannot reach Redis at redis://:\*\*\*@"):
        await backend.connect()
    await backend.close()
    with pytest.raises(RedisUnavailableError) as caught:
        await RedisBackend.create(url)
    assert "s3cret" not in str(caught.value)


async def test_changes_before_connect_is_an_error(redis_url: str) -> None:
    """changes() on a backend that was never connected raises instead of guessing a start."""
    backend = RedisBackend(redis_url)
    with pytest.raises(RuntimeError, match="connect"):
        await backend.changes()
    await backend.close()
