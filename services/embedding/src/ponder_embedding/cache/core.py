"""The semantic cache: exact-text fast path, then two stages: candidates by cosine at a recall
threshold, served only when the equivalence verifier accepts one; TTL fixed at store time, LRU
size bound, statistics with rejections by reason."""

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
    normalize_text,
)
from ponder_embedding.cache.index import (
    DEFAULT_SEARCH,
    IndexFiles,
    NamespaceIndex,
    SearchOptions,
)
from ponder_embedding.cache.verifier import Verdict, Verifier
from ponder_embedding.cache.verifier.llm import LlmJudge
from ponder_embedding.cache.verifier.verdict import LLM


logger = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], Awaitable[Vector]]
Clock = Callable[[], float]


# What a lookup decided (LookupResult.verdict).
EXACT = "exact"  # the same text (after whitespace and case): served
ACCEPTED = "accepted"  # a candidate the verifier accepted: served
REJECTED = "rejected"  # candidates at or above the threshold, none accepted: a miss
BELOW_THRESHOLD = "below_threshold"  # no candidate similar enough to verify: a miss
EMPTY = "empty"  # nothing stored in the namespace: a miss
CANDIDATES = 8  # candidates taken from the index and verified, best first


@dataclass(frozen=True, slots=True)
class LookupResult:
    """A hit (entry and similarity) or a miss (entry None), with the best candidate considered
    (its text and key), the verdict and its reason."""

    entry: CacheEntry | None
    similarity: float
    exact: bool = False
    candidate_text: str = ""
    candidate_key: str = ""
    verdict: str = EMPTY
    reason: str = ""
    category: str = ""  # the verifier's reason category (polarity, antonym, ...) when rejected

    @property
    def hit(self) -> bool:
        """Whether an entry answered."""
        return self.entry is not None

    def explain(self) -> str:
        """The verdict and its reason in one line, e.g. 'rejected: polarity differs ("fail")'."""
        return f"{self.verdict}: {self.reason}" if self.reason else self.verdict


@dataclass(slots=True)
class CacheStats:
    """Counters of one namespace (or all of them)."""

    entries: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    rejections: dict[str, int] = field(default_factory=dict)  # by reason category

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
    rejections: dict[str, Counter[str]] = field(default_factory=dict)  # namespace -> category

    def reject(self, namespace: str, category: str) -> None:
        """Count a rejection of `namespace` by reason category."""
        self.rejections.setdefault(namespace, Counter())[category] += 1


class SemanticCache:
    """Entries live in memory (dict + one vector matrix per namespace) and in a durable backend;
    the memory copy is rebuilt from the backend at start.

    A lookup first tries the exact text (a hash lookup: no embedding, sub-millisecond), then
    embeds the text once (its normalised form: aliases expanded, hyphens resolved) and takes the
    most similar entries of the namespace at or above the recall threshold; the best one the
    verifier accepts answers. Without a verifier the best candidate at or above the threshold
    answers (the single-threshold cache of earlier versions, kept for comparison). Entries
    expire at the TTL fixed when they were stored (a hit never extends it) and the least
    recently used ones are evicted beyond `max_entries`.
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
        verifier: Verifier | None = None,
        judge: LlmJudge | None = None,
        clock: Clock = time.time,
        index_dir: Path | None = None,
        index_search: SearchOptions = DEFAULT_SEARCH,
    ) -> None:
        self._backend = backend
        self._embed = embed
        self._dimensions = dimensions
        self.max_entries = max_entries
        self.default_ttl_seconds = default_ttl_seconds
        self.default_threshold = default_threshold
        self._verifier = verifier
        self._judge = judge
        self._clock = clock
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()  # LRU order, oldest first
        self._indexes: dict[str, NamespaceIndex] = {}
        # Where the vector indexes are saved (no folder: rebuilt from the stored vectors at
        # every start), and how they are searched.
        self._index_files = IndexFiles(index_dir, dimensions, index_search)
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
        return self._index_files.open(by_namespace)

    async def save_indexes(self) -> None:
        """Write the vector indexes that changed to their files (when the cache has a folder)."""
        if self._index_files.folder is not None:
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
        """The best verified entry among the candidates at or above `threshold` (the recall
        threshold; default: the cache's), or a miss that says why."""
        await self._apply(await self._backend.changes())
        now = self._clock()
        exact = await self._exact(namespace, text, now)
        if exact is not None:
            result = await self._hit(exact, 1.0, now, EXACT, "the same text")
            if result is not None:
                return result
        index = self._indexes.get(namespace)
        if index is None or len(index) == 0:
            self._counters.misses[namespace] += 1
            return LookupResult(None, 0.0, reason="no entry in the namespace")
        query = (await self._embed([self._embedding_text(text)]))[0]
        minimum = self.default_threshold if threshold is None else threshold
        best: tuple[CacheEntry, float, Verdict | None] | None = None
        for key, cosine in index.search(query, k=CANDIDATES):
            similarity = min(cosine, 1.0)  # float rounding of unit vectors
            entry = self._entries.get(key)
            if entry is None:
                continue
            if entry.expired(now):
                self._expire(entry)
                continue
            if similarity < minimum:
                best = best or (entry, similarity, None)
                break
            verdict = await self._verify(text, entry.text)
            best = best or (entry, similarity, verdict)
            if verdict is None or verdict.accepted:
                reason = verdict.reason if verdict else f"similarity >= {minimum:g}"
                result = await self._hit(entry, similarity, now, ACCEPTED, reason)
                if result is not None:
                    return result
        self._counters.misses[namespace] += 1
        return self._miss(namespace, best, minimum)

    def _miss(
        self,
        namespace: str,
        best: tuple[CacheEntry, float, Verdict | None] | None,
        minimum: float,
    ) -> LookupResult:
        """A miss naming the best candidate and why it was not served."""
        if best is None:
            return LookupResult(None, 0.0, reason="no entry in the namespace")
        entry, similarity, verdict = best
        if verdict is None:
            return LookupResult(
                None,
                similarity,
                candidate_text=entry.text,
                candidate_key=entry.key,
                verdict=BELOW_THRESHOLD,
                reason=f"best similarity {similarity:.3f} is below {minimum:g}",
            )
        self._counters.reject(namespace, verdict.category)
        return LookupResult(
            None,
            similarity,
            candidate_text=entry.text,
            candidate_key=entry.key,
            verdict=REJECTED,
            reason=verdict.reason,
            category=verdict.category,
        )

    async def _verify(self, query: str, candidate: str) -> Verdict | None:
        """The verifier's verdict (None without one); an undecided rejection goes to the LLM
        verifier when one is configured."""
        if self._verifier is None:
            return None
        verdict = self._verifier.verify(query, candidate)
        if verdict.accepted or not verdict.undecided or self._judge is None:
            return verdict
        same = await self._judge.same(query, candidate)
        if same:
            return Verdict(True, LLM, f"the LLM verifier judged them the same ({verdict.reason})")
        return verdict

    def _embedding_text(self, text: str) -> str:
        """What is embedded for `text`: its normalised form when verifying (paraphrases come
        closer), else the text itself."""
        return self._verifier.embedding_text(text) if self._verifier else text

    async def store(
        self,
        namespace: str,
        text: str,
        payload: bytes,
        *,
        payload_type: str = "",
        ttl_seconds: float | None = None,
    ) -> CacheEntry:
        """Store `payload` under `text`, replacing the entry of the same text; durable on return.
        The entry expires `ttl_seconds` from now, whatever hits it gets."""
        vector = (await self._embed([self._embedding_text(text)]))[0]
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

    async def invalidate(
        self,
        namespace: str,
        key: str = "",
        *,
        topic_prefix: str = "",
        namespace_prefix: bool = False,
    ) -> int:
        """Remove one entry by key, the entries whose text starts with `topic_prefix` (case and
        whitespace ignored), or whole namespaces; `namespace_prefix` takes `namespace` as a
        prefix (every scope and library version of a workflow kind). Returns how many."""
        await self._apply(await self._backend.changes())
        async with self._lock:
            if key:
                entry = self._entries.get(key)
                stored = entry is not None or await self._backend.get(key) is not None
                if entry is not None and entry.namespace != namespace:
                    return 0
                await self._backend.delete([key])
                self._drop(key)
                return 1 if stored else 0
            spaces = (
                {e.namespace for e in self._entries.values() if e.namespace.startswith(namespace)}
                if namespace_prefix
                else {namespace}
            )
            if topic_prefix:
                prefix = normalize_text(topic_prefix)
                keys = [
                    k
                    for k, e in self._entries.items()
                    if e.namespace in spaces and normalize_text(e.text).startswith(prefix)
                ]
                await self._backend.delete(keys)
                for removed_key in keys:
                    self._drop(removed_key)
                return len(keys)
            removed: set[str] = set()
            for space in spaces:
                removed.update(await self._backend.delete_namespace(space))
                removed.update(k for k, e in self._entries.items() if e.namespace == space)
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
                rejections=dict(counters.rejections.get(namespace, {})),
            )
        rejections: Counter[str] = Counter()
        for by_category in counters.rejections.values():
            rejections.update(by_category)
        return CacheStats(
            entries=len(self._entries),
            hits=counters.hits.total(),
            misses=counters.misses.total(),
            evictions=counters.evictions.total(),
            expirations=counters.expirations.total(),
            rejections=dict(rejections),
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
        self, entry: CacheEntry, similarity: float, now: float, verdict: str, reason: str
    ) -> LookupResult | None:
        """Count a hit and return it, the entry with its payload (None if it vanished)."""
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
        return LookupResult(
            answer,
            similarity,
            exact=verdict == EXACT,
            candidate_text=entry.text,
            candidate_key=entry.key,
            verdict=verdict,
            reason=reason,
        )

    def _insert(self, entry: CacheEntry) -> None:
        index = self._indexes.get(entry.namespace)
        if index is None:
            index = self._indexes[entry.namespace] = self._index_files.new()
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
