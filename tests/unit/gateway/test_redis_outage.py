"""The gateway's behaviour while Redis is away, with a store and buckets that can be switched
off (the real Redis outage over processes is tests/reliability/test_redis_outage.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.access import TokenBuckets
from ponder_gateway.filters import EVERYTHING, Filter
from ponder_gateway.record_plan import Page
from ponder_gateway.redis_outage import FallbackBuckets, OutageTolerantStore
from ponder_runtime import UnavailableError


class SwitchableStore:
    """An in-memory WorkflowStore that raises Redis's ConnectionError while `down`."""

    def __init__(self) -> None:
        self.records: dict[str, pb.Workflow] = {}
        self.writes: list[tuple[str, int]] = []
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise RedisConnectionError("Connection refused.")

    async def save(self, workflow: pb.Workflow) -> None:
        """Store a copy (raises while down)."""
        self._check()
        copy = pb.Workflow()
        copy.CopyFrom(workflow)
        self.records[workflow.name] = copy
        self.writes.append((workflow.name, workflow.state))

    async def insert(self, workflow: pb.Workflow) -> None:
        """Store a copy of a new record (raises while down)."""
        await self.save(workflow)

    async def get(self, name: str) -> pb.Workflow | None:
        """A stored record (raises while down)."""
        self._check()
        return self.records.get(name)

    async def list(self, where: Filter, *, limit: int, after: tuple[int, str] | None) -> Page:
        """Every record (raises while down)."""
        self._check()
        return Page(list(self.records.values())[:limit])

    async def delete(self, name: str) -> bool:
        """Forget a record (raises while down)."""
        self._check()
        return self.records.pop(name, None) is not None

    async def purge(self, before_ns: int, *, limit: int) -> Sequence[str]:
        """Nothing (raises while down)."""
        self._check()
        return []

    async def due(
        self, before_ns: int, *, limit: int, after: tuple[int, str] | None = None
    ) -> Sequence[pb.Workflow]:
        """Nothing (raises while down)."""
        self._check()
        return []

    async def unfinished(self) -> Sequence[pb.Workflow]:
        """Nothing (raises while down)."""
        self._check()
        return []

    async def close(self) -> None:
        """Nothing to close."""


def workflow(name: str, state: pb.WorkflowState) -> pb.Workflow:
    """A record in a state."""
    return pb.Workflow(name=f"workflows/{name}", id=name, state=state)


async def test_a_creation_is_refused_and_later_writes_are_kept_then_written_in_order() -> None:
    """While Redis is away: a PENDING save is UNAVAILABLE; RUNNING and the result of an
    acknowledged workflow are kept and served; once Redis is back they are written, the newest
    last, without anyone asking."""
    inner = SwitchableStore()
    store = OutageTolerantStore(inner, retry_seconds=0.01)
    await store.save(workflow("a", pb.WORKFLOW_STATE_PENDING))  # acknowledged before the outage
    inner.down = True
    with pytest.raises(UnavailableError, match="was not created"):
        await store.save(workflow("b", pb.WORKFLOW_STATE_PENDING))
    await store.save(workflow("a", pb.WORKFLOW_STATE_RUNNING))
    await store.save(workflow("a", pb.WORKFLOW_STATE_SUCCEEDED))
    assert store.pending == 1
    kept = await store.get("workflows/a")
    assert kept is not None
    assert kept.state == pb.WORKFLOW_STATE_SUCCEEDED
    with pytest.raises(UnavailableError):
        await store.get("workflows/other")
    with pytest.raises(UnavailableError):
        await store.list(EVERYTHING, limit=10, after=None)
    inner.down = False
    async with asyncio.timeout(30):
        while store.pending:  # noqa: ASYNC110  # the background writer's progress
            await asyncio.sleep(0.01)
    assert inner.writes == [
        ("workflows/a", pb.WORKFLOW_STATE_PENDING),
        ("workflows/a", pb.WORKFLOW_STATE_SUCCEEDED),
    ]
    assert "workflows/b" not in inner.records
    await store.close()


async def test_a_new_record_is_refused_in_any_state_and_never_kept() -> None:
    """While Redis is away an insert (a creation: a PENDING workflow, or a cache hit's only
    record, already SUCCEEDED) is UNAVAILABLE and nothing of it is kept."""
    inner = SwitchableStore()
    store = OutageTolerantStore(inner, retry_seconds=60, close_wait_seconds=0)
    inner.down = True
    for state in (pb.WORKFLOW_STATE_PENDING, pb.WORKFLOW_STATE_SUCCEEDED):
        with pytest.raises(UnavailableError, match="was not created"):
            await store.insert(workflow("new", state))
    assert store.pending == 0
    inner.down = False
    await store.insert(workflow("new", pb.WORKFLOW_STATE_SUCCEEDED))
    assert inner.writes == [("workflows/new", pb.WORKFLOW_STATE_SUCCEEDED)]
    await store.close()


async def test_past_max_pending_a_workflow_about_to_run_is_refused() -> None:
    """With max_pending records waiting, a RUNNING save (before any work) is refused, while
    a final state is still kept."""
    inner = SwitchableStore()
    store = OutageTolerantStore(inner, retry_seconds=60, close_wait_seconds=0, max_pending=2)
    inner.down = True
    await store.save(workflow("a", pb.WORKFLOW_STATE_RUNNING))
    await store.save(workflow("b", pb.WORKFLOW_STATE_RUNNING))
    with pytest.raises(UnavailableError, match="2 records already wait"):
        await store.save(workflow("c", pb.WORKFLOW_STATE_RUNNING))
    await store.save(workflow("d", pb.WORKFLOW_STATE_FAILED))
    assert store.pending == 3
    await store.close()


async def test_rate_limits_fall_back_to_the_local_bucket_and_come_back() -> None:
    """While the shared buckets fail, tokens come from the local bucket (its limit holds);
    after retry_seconds the shared ones are tried again and used once they answer."""
    now = [0.0]
    shared_down = [True]

    class Shared:
        """Shared buckets that fail while down and always allow otherwise."""

        calls = 0

        async def take(self, caller: str) -> float:
            Shared.calls += 1
            if shared_down[0]:
                raise RedisConnectionError("Connection refused.")
            return 0.0

    local = TokenBuckets(rate=1.0, burst=2, clock=lambda: now[0])
    buckets = FallbackBuckets(Shared(), local, retry_seconds=1.0, clock=lambda: now[0])
    waits = [await buckets.take("k") for _ in range(3)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0
    assert Shared.calls == 1
    assert buckets.falling_back
    shared_down[0] = False
    now[0] = 1.5
    assert await buckets.take("k") == 0.0
    assert Shared.calls == 2
    assert not buckets.falling_back
