"""A short-lived cache of source results with request coalescing (single flight).

A burst of identical searches reaches each upstream once: the first caller starts the fetch,
concurrent callers await the same fetch, and later callers within the TTL get its result.
Failures are not cached. A caller that times out does not cancel the shared fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

from cachetools import TTLCache

from ponder_research.documents import FoundDocument


Fetch = Callable[[], Awaitable[list[FoundDocument]]]


def _retrieve(task: asyncio.Task[list[FoundDocument]]) -> None:
    if not task.cancelled():
        task.exception()


class SourceCache:
    """(key -> documents) for `ttl` seconds, at most `max_entries` keys (a cachetools
    TTLCache: an entry goes `ttl` seconds after it was fetched, or earlier when it is the least
    recently used of a full cache)."""

    def __init__(
        self, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._entries: TTLCache[Hashable, list[FoundDocument]] = TTLCache(
            max(max_entries, 1), ttl=max(ttl, 1e-9), timer=clock
        )
        self._in_flight: dict[Hashable, asyncio.Task[list[FoundDocument]]] = {}
        self.upstream_calls = 0

    async def get(self, key: Hashable, fetch: Fetch) -> tuple[list[FoundDocument], bool]:
        """The documents for `key` and whether they came without a new upstream call."""
        cached = self._entries.get(key)
        if cached is not None:
            return cached, True
        task = self._in_flight.get(key)
        shared = task is not None
        if task is None:
            task = asyncio.create_task(self._fetch(key, fetch))
            task.add_done_callback(_retrieve)  # no "never retrieved" noise if all waiters left
            self._in_flight[key] = task
        return await asyncio.shield(task), shared

    async def _fetch(self, key: Hashable, fetch: Fetch) -> list[FoundDocument]:
        self.upstream_calls += 1
        try:
            documents = await fetch()
        finally:
            self._in_flight.pop(key, None)
        if self._ttl > 0 and self._entries.maxsize > 0:
            self._entries[key] = documents
        return documents
