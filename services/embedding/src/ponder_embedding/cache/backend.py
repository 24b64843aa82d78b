"""The storage interface behind the cache: SQLite (default, one process) or Redis (shared)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ponder_embedding.cache.entries import CacheChange, CacheEntry


class CacheBackend(Protocol):
    """Durable storage of cache entries. The in-memory index is rebuilt from `load_all` at
    start; a shared backend also reports what other replicas changed (`changes`)."""

    async def load_all(self, now: float) -> list[CacheEntry]:
        """Every entry that has not expired at `now`."""
        ...

    async def put(self, entry: CacheEntry) -> None:
        """Store or replace `entry`; durable once this returns (survives kill -9)."""
        ...

    async def get(self, key: str) -> CacheEntry | None:
        """The entry stored under `key`, if any (expired or not)."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove these entries (missing keys are ignored)."""
        ...

    async def delete_namespace(self, namespace: str) -> list[str]:
        """Remove every entry of `namespace`; return their keys."""
        ...

    async def record_hits(self, hits: Sequence[tuple[str, int, float]]) -> None:
        """Best effort: add (key, hits, last_access) to the stored hit counts."""
        ...

    async def changes(self) -> list[CacheChange]:
        """What other replicas stored or removed since the last call (empty when unshared)."""
        ...

    async def close(self) -> None:
        """Flush and release connections."""
        ...
