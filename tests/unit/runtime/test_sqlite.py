"""SqliteFile: writes from many coroutines are grouped into few durable commits."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from ponder_runtime.sqlite import SqliteFile


SCHEMA = "CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"


async def test_concurrent_writes_share_commits_and_are_all_durable(tmp_path):
    path = tmp_path / "items.sqlite3"
    file = SqliteFile(path, SCHEMA, thread_name="test-sqlite")
    commits: list[str] = []
    await file.run(lambda db: db.set_trace_callback(commits.append))
    await asyncio.gather(
        *(file.write("INSERT INTO items VALUES (?, ?)", (f"k{i}", i)) for i in range(200))
    )
    count = await file.run(lambda db: db.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    assert count == 200
    groups = [sql for sql in commits if sql == "COMMIT"]
    assert 1 <= len(groups) < 50, f"{len(groups)} commits for 200 concurrent writes"
    await file.close()
    with sqlite3.connect(path) as reopened:  # on disk, not only in the connection
        assert reopened.execute("SELECT SUM(value) FROM items").fetchone()[0] == sum(range(200))


async def test_a_failing_statement_fails_only_its_writer(tmp_path):
    file = SqliteFile(tmp_path / "items.sqlite3", SCHEMA, thread_name="test-sqlite")
    await file.write("INSERT INTO items VALUES (?, ?)", ("taken", 1))
    results = await asyncio.gather(
        file.write("INSERT INTO items VALUES (?, ?)", ("a", 1)),
        file.write("INSERT INTO items VALUES (?, ?)", ("taken", 2)),  # primary key clash
        file.write("INSERT INTO items VALUES (?, ?)", ("b", 3)),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert results[2] is None
    rows = await file.run(lambda db: db.execute("SELECT key, value FROM items").fetchall())
    assert sorted(rows) == [("a", 1), ("b", 3), ("taken", 1)]
    await file.close()


async def test_statements_written_together_go_all_or_none(tmp_path):
    """write_all: a writer's statements commit together in the group, and when one fails
    none of that writer's stays, while the other writers' do."""
    file = SqliteFile(tmp_path / "items.sqlite3", SCHEMA, thread_name="test-sqlite")
    await file.write("INSERT INTO items VALUES (?, ?)", ("taken", 1))
    insert = "INSERT INTO items VALUES (?, ?)"
    results = await asyncio.gather(
        file.write_all([(insert, ("a", 1)), (insert, ("a2", 2))]),
        file.write_all([(insert, ("c", 3)), (insert, ("taken", 4))]),  # the second clashes
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    rows = await file.run(lambda db: db.execute("SELECT key FROM items").fetchall())
    assert sorted(key for (key,) in rows) == ["a", "a2", "taken"]
    await file.close()


async def test_a_write_is_visible_to_the_next_read(tmp_path):
    file = SqliteFile(tmp_path / "items.sqlite3", SCHEMA, thread_name="test-sqlite")
    await file.write("INSERT INTO items VALUES (?, ?)", ("k", 7))
    value = await file.run(
        lambda db: db.execute("SELECT value FROM items WHERE key = 'k'").fetchone()
    )
    assert value == (7,)
    await file.close()
    with pytest.raises(RuntimeError):
        await file.write("INSERT INTO items VALUES (?, ?)", ("late", 1))
