"""A SQLite file used from async code: one connection on one dedicated thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ponder_runtime.groups import Groups


T = TypeVar("T")
_Statements = Sequence[tuple[str, Sequence[Any]]]  # (sql, parameters), run together


class SqliteFile:
    """Runs work against one connection on its own thread (the event loop never blocks on
    disk). WAL journal and synchronous=FULL: every commit is durable when it returns, through
    SIGKILL and power loss. The file and `schema` are created on first use, after `migrate` has
    brought an older file up to date.

    `write` is a group commit: the statements that arrive while a commit is on disk go
    together in the next transaction, one sync for the group, so concurrent writers are not
    serialized behind one fsync each."""

    def __init__(
        self,
        path: Path,
        schema: str,
        *,
        thread_name: str,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self._path = path
        self._schema = schema
        self._migrate = migrate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._db: sqlite3.Connection | None = None
        self._groups: Groups[_Statements] = Groups(self._commit_group)

    async def write(self, sql: str, params: Sequence[Any]) -> None:
        """Run one statement; durable when this returns (committed with its group)."""
        await self.write_all([(sql, params)])

    async def write_all(self, statements: _Statements) -> None:
        """Run statements together (all or none); durable when this returns (committed with
        its group)."""
        await self._groups.call(statements)

    async def _commit_group(self, batch: list[_Statements]) -> list[Exception | None]:
        """The group's transaction on the database thread (a closed thread fails it)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._commit, batch)

    def _commit(self, batch: list[_Statements]) -> list[Exception | None]:
        """One transaction for the batch; if it fails, each writer's statements alone (so one
        bad statement fails only its own writer)."""
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
            for statements in batch:
                for sql, params in statements:
                    db.execute(sql, params)
            db.execute("COMMIT")
            return [None] * len(batch)
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
        errors: list[Exception | None] = []
        for statements in batch:
            try:
                db.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    db.execute(sql, params)
                db.execute("COMMIT")
                errors.append(None)
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                errors.append(exc)
        return errors

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` on the database thread (autocommit mode)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return work(self._connection())

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if self._migrate is not None:
                self._migrate(db)
            db.executescript(self._schema)
            self._db = db
        return self._db

    async def close(self) -> None:
        """Finish pending writes, close the connection and stop the thread."""
        await self._groups.close()
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)
