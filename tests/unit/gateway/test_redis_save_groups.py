"""Concurrent record saves on Redis go in pipelined groups: one connection and round trip for
the group, each save still acknowledged (or failed) on its own; inserts of one name race to one
winner on both stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_devstack.ports import free_port
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore
from ponder_runtime import AlreadyExistsError


def _hit(i: int) -> pb.Workflow:
    """A cache-hit record sharing one result."""
    workflow = pb.Workflow(name=f"workflows/hit-{i:03d}", id=f"hit-{i:03d}", topic="agents")
    workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
    workflow.result.text = "Self-reflection lets an agent critique its answer. " * 40
    workflow.create_time.FromSeconds(1_767_225_600 + i)
    workflow.update_time.FromSeconds(1_767_225_601 + i)
    return workflow


async def _connections(client: aioredis.Redis) -> int:
    info = await client.info("stats")
    return int(info["total_connections_received"])


async def test_concurrent_saves_share_a_connection_and_all_land(redis_url: str) -> None:
    """Fifty saves at once: every record stored and readable, over at most two new
    connections (a save each would open one connection per waiting save)."""
    watcher = aioredis.Redis.from_url(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    store = RedisWorkflowStore(client)
    try:
        before = await _connections(watcher)
        await asyncio.gather(*(store.save(_hit(i)) for i in range(50)))
        opened = await _connections(watcher) - before
        stored = [await store.get(f"workflows/hit-{i:03d}") for i in range(50)]
    finally:
        await store.close()
        await client.aclose()
        await watcher.aclose()
    assert opened <= 2
    assert [w.name if w else None for w in stored] == [_hit(i).name for i in range(50)]
    assert all(w is not None and w.result.text.startswith("Self-reflection") for w in stored)


async def test_a_script_redis_forgot_is_loaded_again(redis_url: str) -> None:
    """After SCRIPT FLUSH (or a Redis restart) the next saves still land."""
    client = aioredis.Redis.from_url(redis_url)
    store = RedisWorkflowStore(client)
    try:
        await store.save(_hit(1))
        await client.script_flush()
        await asyncio.gather(store.save(_hit(2)), store.save(_hit(3)))
        names = [
            w.name for w in (await asyncio.gather(*(store.get(_hit(i).name) for i in (2, 3)))) if w
        ]
    finally:
        await store.close()
        await client.aclose()
    assert names == ["workflows/hit-002", "workflows/hit-003"]


async def test_every_save_of_a_group_fails_when_redis_is_away() -> None:
    """Nothing listens: each waiting save raises the connection error (what the outage
    handling catches), none hangs."""
    client = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=2)
    store = RedisWorkflowStore(client)
    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(store.save(_hit(i)) for i in range(3)), return_exceptions=True),
            timeout=30,
        )
    finally:
        await store.close()
        await client.aclose()
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert isinstance(outcome, RedisConnectionError)
    with pytest.raises(RedisConnectionError):
        await RedisWorkflowStore(client).save(_hit(9))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_inserts_of_one_name_race_to_one_winner(kind: str, request, tmp_path: Path) -> None:
    """Five inserts of one name at once (two creations of one caller-chosen id): one is
    recorded, the others are ALREADY_EXISTS; inserts of other names in the same group land;
    a later insert of the name is refused too, and a save still replaces it."""
    client = (
        aioredis.Redis.from_url(request.getfixturevalue("redis_url")) if kind == "redis" else None
    )
    store = (
        RedisWorkflowStore(client) if client is not None else SqliteWorkflowStore(tmp_path / "w.db")
    )
    try:
        outcomes = await asyncio.gather(
            *(store.insert(_hit(7)) for _ in range(5)),
            store.insert(_hit(8)),
            return_exceptions=True,
        )
        with pytest.raises(AlreadyExistsError, match="workflows/hit-007 already exists"):
            await store.insert(_hit(7))
        replaced = _hit(7)
        replaced.state = pb.WORKFLOW_STATE_FAILED
        await store.save(replaced)
        found = await store.get("workflows/hit-007"), await store.get("workflows/hit-008")
    finally:
        await store.close()
        if client is not None:
            await client.aclose()
    assert outcomes[:5].count(None) == 1
    assert sum(isinstance(o, AlreadyExistsError) for o in outcomes[:5]) == 4
    assert outcomes[5] is None
    assert found[0] is not None
    assert found[0].state == pb.WORKFLOW_STATE_FAILED
    assert found[1] is not None
    assert found[1].name == "workflows/hit-008"
