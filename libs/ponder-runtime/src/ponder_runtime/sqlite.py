"""A SQLite file used from async code: one connection on one dedicated thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar


T = TypeVar("T")


class SqliteFile:
    """Runs work against one connection on its own thread (the event loop never blocks on
    disk). WAL journal and synchronous=FULL: every commit is durable when it returns, through
    SIGKILL and power loss. The file and `schema` are created on first use."""

    def __init__(self, path: Path, schema: str, *, thread_name: str) -> None:
        self._path = path
        self._schema = schema
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._db: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` on the database thread (autocommit mode)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(self._schema)
            self._db = db
        return work(self._db)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)
