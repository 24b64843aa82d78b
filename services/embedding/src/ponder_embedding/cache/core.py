"""The semantic cache: exact-text fast path, cosine search, TTL, LRU size bound, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ponder_embedding.cache.backend import CacheBackend
from ponder_embedding.cache.entries import (
    NO_VECTOR,
    CacheChange,
    CacheEntry,
    Vector,
    entry_key,
)
from ponder_embedding.cache.index import IndexFiles, NamespaceIndex


logger = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], Awaitable[Vector]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class LookupResult:
    """A hit (entry and similarity) or a miss (entry None, similarity of the best candidate)."""

    entry: CacheEntry | None
    similarity: float
    exact: bool = False

    @property
    def hit(self) -> bool:
        """Whether an entry answered."""
        return self.entry is not None


@dataclass(slots=True)
class CacheStats:
    """Counters of one namespace (or all of them)."""

    entries: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0

    @property
    def hit_ratio(self) -> float:
        """hits / lookups, 0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


@dataclass(slots=True)
class _Counters:
    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    evictions: Counter[str] = field(default_factory=Counter)
    expirations: Counter[str] = field(default_factory=Counter)


class SemanticCache:
    """Entries live in memory (dict + one vector matrix per namespace) and in a durable backend;
    the memory copy is rebuilt from the backend at start.

    A lookup first tries the exact text (a hash lookup: no embedding, sub-millisecond), then
    embeds the text once and takes the most similar entry of the namespace. Entries expire at
    their TTL and the least recently used ones are evicted beyond `max_entries`.
    """

    def __init__(
        self,
        backend: CacheBackend,
        embed: Embed,
        *,
        dimensions: int,
        max_entries: int,
        default_ttl_seconds: float,
        default_threshold: float,
        clock: Clock = time.time,
        index_dir: Path | None = None,
    ) -> None:
        self._backend = backend
        self._embed = embed
        self._dimensions = dimensions
        self.max_entries = max_entries
        self.default_ttl_seconds = default_ttl_seconds
        self.default_threshold = default_threshold
        self._clock = clock
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()  # LRU order, oldest first
        self._indexes: dict[str, NamespaceIndex] = {}
        # Saved vector indexes (None: rebuilt from the stored vectors at every start).
        self._index_files = IndexFiles(index_dir, dimensions) if index_dir else None
        self._counters = _Counters()
        self._pending_hits: dict[str, tuple[int, float]] = {}
        self._lock = asyncio.Lock()

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every unexpired entry from the backend, and the saved vector indexes (only
        what changed since they were saved is added or removed; nothing is re-embedded)."""
        entries = await self._backend.load_all(self._clock())
        self._indexes = await asyncio.to_thread(self._open_indexes, entries)
        for entry in entries:
            self._remember(entry)
        logger.info("cache loaded", extra={"entries": len(self._entries)})

    def _open_indexes(self, entries: Sequence[CacheEntry]) -> dict[str, NamespaceIndex]:
        by_namespace: dict[str, tuple[list[str], list[Vector]]] = {}
        for entry in entries:
            keys, vectors = by_namespace.setdefault(entry.namespace, ([], []))
            keys.append(entry.key)
            vectors.append(entry.vector)
        files = self._index_files or IndexFiles(None, self._dimensions)
        return files.open(by_namespace)

    async def save_indexes(self) -> None:
        """Write the vector indexes that changed to their files (when the cache has a folder)."""
        if self._index_files is not None:
            await asyncio.to_thread(self._index_files.save, self._indexes)

    async def flush(self) -> None:
        """Write accumulated hit counts to the backend (best effort)."""
        hits, self._pending_hits = self._pending_hits, {}
        if hits:
            await self._backend.record_hits([(k, n, t) for k, (n, t) in hits.items()])

    async def sweep(self) -> int:
        """Remove every expired entry; return how many."""
        now = self._clock()
        expired = [entry for entry in self._entries.values() if entry.expired(now)]
        for entry in expired:
            self._drop(entry.key)
            self._counters.expirations[entry.namespace] += 1
        await self._backend.delete([entry.key for entry in expired])
        return len(expired)

    async def run_maintenance(self, interval_seconds: float) -> None:
        """Flush hit counts and sweep expired entries every `interval_seconds`, forever."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.flush()
                await self.sweep()
            except Exception:
                logger.exception("cache maintenance failed")

    async def close(self) -> None:
        """Flush, save the vector indexes and close the backend."""
        with contextlib.suppress(Exception):
            await self.flush()
        try:
            await self.save_indexes()
        except Exception:
            logger.exception("saving the cache index failed (rebuilt from the stored vectors)")
        await self._backend.close()

    # -- operations ---------------------------------------------------------------------------

    async def lookup(
        self, namespace: str, text: str, threshold: float | None = None
    ) -> LookupResult:
        """The best entry at or above `threshold` (default: the cache's), or a miss."""
        await self._apply(await self._backend.changes())
        now = self._clock()
        exact = await self._exact(namespace, text, now)
        if exact is not None:
            result = await self._hit(exact, 1.0, now, exact=True)
            if result is not None:
                return result
        index = self._indexes.get(namespace)
        if index is None or len(index) == 0:
            self._counters.misses[namespace] += 1
            return LookupResult(None, 0.0)
        query = (await self._embed([text]))[0]
        minimum = self.default_threshold if threshold is None else threshold
        best_similarity = 0.0
        for key, similarity in index.search(query, k=4):
            entry = self._entries.get(key)
            if entry is None:
                continue
            if entry.expired(now):
                self._expire(entry)
                continue
            best_similarity = max(best_similarity, similarity)
            if similarity >= minimum:
                result = await self._hit(entry, similarity, now)
                if result is not None:
                    return result
                continue
            break
        self._counters.misses[namespace] += 1
        return LookupResult(None, best_similarity)

    async def store(
        self,
        namespace: str,
        text: str,
        payload: bytes,
        *,
        payload_type: str = "",
        ttl_seconds: float | None = None,
    ) -> CacheEntry:
        """Store `payload` under `text`, replacing the entry of the same text; durable on return."""
        vector = (await self._embed([text]))[0]
        now = self._clock()
        entry = CacheEntry(
            key=entry_key(namespace, text),
            namespace=namespace,
            text=text,
            payload=payload,
            payload_type=payload_type,
            vector=vector,
            create_time=now,
            expire_time=now + (ttl_seconds or self.default_ttl_seconds),
            last_access=now,
        )
        async with self._lock:
            await self._backend.put(entry)
            self._insert(entry)
            await self._evict_beyond_bound()
        return entry

    async def invalidate(self, namespace: str, key: str = "") -> int:
        """Remove one entry by key, or the whole namespace; return how many were removed."""
        async with self._lock:
            if key:
                entry = self._entries.get(key)
                stored = entry is not None or await self._backend.get(key) is not None
                if entry is not None and entry.namespace != namespace:
                    return 0
                await self._backend.delete([key])
                self._drop(key)
                return 1 if stored else 0
            removed = set(await self._backend.delete_namespace(namespace))
            removed.update(k for k, e in self._entries.items() if e.namespace == namespace)
            for removed_key in removed:
                self._drop(removed_key)
            return len(removed)

    def stats(self, namespace: str = "") -> CacheStats:
        """Counters for `namespace`, or summed over all namespaces when empty."""
        counters = self._counters
        if namespace:
            index = self._indexes.get(namespace)
            return CacheStats(
                entries=len(index) if index else 0,
                hits=counters.hits[namespace],
                misses=counters.misses[namespace],
                evictions=counters.evictions[namespace],
                expirations=counters.expirations[namespace],
            )
        return CacheStats(
            entries=len(self._entries),
            hits=counters.hits.total(),
            misses=counters.misses.total(),
            evictions=counters.evictions.total(),
            expirations=counters.expirations.total(),
        )

    def __len__(self) -> int:
        return len(self._entries)

    # -- internals ------------------------------------------------------------------------------

    async def _exact(self, namespace: str, text: str, now: float) -> CacheEntry | None:
        key = entry_key(namespace, text)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expired(now):
            self._expire(entry)
            return None
        return entry

    async def _with_payload(self, entry: CacheEntry) -> CacheEntry | None:
        """`entry` with its payload read from the backend; None when it vanished meanwhile."""
        stored = await self._backend.get(entry.key)
        if stored is None or stored.payload is None:
            self._drop(entry.key)
            return None
        return replace(entry, payload=stored.payload)

    async def _hit(
        self, entry: CacheEntry, similarity: float, now: float, *, exact: bool = False
    ) -> LookupResult | None:
        """Count a hit and return the entry with its payload (None if it vanished)."""
        answer = await self._with_payload(entry)
        if answer is None:
            return None
        entry.hit_count += 1
        entry.last_access = now
        self._entries.move_to_end(entry.key)
        count, _ = self._pending_hits.get(entry.key, (0, now))
        self._pending_hits[entry.key] = (count + 1, now)
        self._counters.hits[entry.namespace] += 1
        answer.hit_count, answer.last_access = entry.hit_count, now
        return LookupResult(answer, similarity, exact)

    def _insert(self, entry: CacheEntry) -> None:
        index = self._indexes.get(entry.namespace)
        if index is None:
            index = self._indexes[entry.namespace] = NamespaceIndex(self._dimensions)
        index.add(entry.key, entry.vector)
        self._remember(entry)

    def _remember(self, entry: CacheEntry) -> None:
        """Keep the entry's metadata in memory (most recently used)."""
        self._entries[entry.key] = replace(entry, payload=None, vector=NO_VECTOR)
        self._entries.move_to_end(entry.key)

    def _drop(self, key: str) -> CacheEntry | None:
        entry = self._entries.pop(key, None)
        self._pending_hits.pop(key, None)
        if entry is not None:
            index = self._indexes.get(entry.namespace)
            if index is not None:
                index.remove(key)
        return entry

    def _expire(self, entry: CacheEntry) -> None:
        """Drop an expired entry from memory now; the backend copy goes at the next sweep (or
        by itself, in Redis)."""
        self._drop(entry.key)
        self._counters.expirations[entry.namespace] += 1

    async def _evict_beyond_bound(self) -> None:
        victims = []
        while len(self._entries) > self.max_entries:
            oldest = self._drop(next(iter(self._entries)))  # least recently used first
            assert oldest is not None
            self._counters.evictions[oldest.namespace] += 1
            victims.append(oldest.key)
        await self._backend.delete(victims)

    async def _apply(self, changes: Sequence[CacheChange]) -> None:
        """Bring the memory copy up to date with other replicas' writes."""
        for change in changes:
            if change.entry is None:
                self._drop(change.key)
            else:
                self._insert(change.entry)
        if changes:
            await self._evict_beyond_bound()
