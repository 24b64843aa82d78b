"""Small durable checkpoints beside the records (SQLite or Redis): what a long activity has
already done, so that a retry on another worker goes on from there instead of paying again."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis

from ponder_runtime.sqlite import SqliteFile


_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflow_checkpoints (key TEXT PRIMARY KEY, data BLOB NOT NULL);
"""


class Checkpoints(Protocol):
    """Bytes by key; a put is durable on return."""

    async def put(self, key: str, data: bytes) -> None:
        """Keep `data` under `key` (replacing)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The data under `key`, if any."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key`."""
        ...

    async def close(self) -> None:
        """Release the storage."""
        ...


class SqliteCheckpoints:
    """Checkpoints in a SQLite file beside the records'."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, thread_name="workflow-checkpoints")

    async def put(self, key: str, data: bytes) -> None:
        """Insert or replace."""
        await self._file.write(
            "INSERT OR REPLACE INTO workflow_checkpoints VALUES (?, ?)", (key, data)
        )

    async def get(self, key: str) -> bytes | None:
        """Select by key."""
        row = await self._file.run(
            lambda db: db.execute(
                "SELECT data FROM workflow_checkpoints WHERE key = ?", (key,)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    async def delete(self, key: str) -> None:
        """Delete by key."""
        await self._file.write("DELETE FROM workflow_checkpoints WHERE key = ?", (key,))

    async def close(self) -> None:
        """Close the file."""
        await self._file.close()


class RedisCheckpoints:
    """Checkpoints as Redis keys that expire after `ttl_seconds`."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str = "ponder:gateway", ttl_seconds: int = 86400
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl_seconds

    async def put(self, key: str, data: bytes) -> None:
        """SET with a TTL."""
        await self._redis.set(f"{self._prefix}:ckpt:{key}", data, ex=self._ttl)

    async def get(self, key: str) -> bytes | None:
        """GET."""
        data: object = await self._redis.get(f"{self._prefix}:ckpt:{key}")
        if data is None:
            return None
        return data if isinstance(data, bytes) else str(data).encode()

    async def delete(self, key: str) -> None:
        """DEL."""
        await self._redis.delete(f"{self._prefix}:ckpt:{key}")

    async def close(self) -> None:
        """Nothing to flush."""
