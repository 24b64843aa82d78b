"""Gateway state shared by replicas through Redis: workflow records and rate-limit buckets."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.store import UNFINISHED, ListFilter, tenant_of


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(value: object) -> workflow_pb2.Workflow:
    data = value if isinstance(value, bytes) else str(value).encode()
    return workflow_pb2.Workflow.FromString(data)


def _micros(workflow: workflow_pb2.Workflow) -> int:
    return int(workflow.create_time.ToNanoseconds() // 1000)


class RedisWorkflowStore:
    """Workflow records in Redis: one key per record, a sorted set for the newest-first
    order (score = create time in µs) and a set of the unfinished ones."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "ponder:gateway") -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self._prefix}:wf:{name}"

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a record (one transaction)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(workflow.name), workflow.SerializeToString())
            pipe.zadd(f"{self._prefix}:order", {workflow.name: _micros(workflow)})
            if workflow.state in UNFINISHED:
                pipe.sadd(f"{self._prefix}:unfinished", workflow.name)
            else:
                pipe.srem(f"{self._prefix}:unfinished", workflow.name)
            await pipe.execute()

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """The record called `name`, if any."""
        data = await self._redis.get(self._key(name))
        return None if data is None else _record(data)

    async def list(
        self, where: ListFilter, *, limit: int, after: tuple[int, str] | None
    ) -> list[workflow_pb2.Workflow]:
        """Up to `limit` records, newest first, after the (create_time ns, name) position."""
        found: list[workflow_pb2.Workflow] = []
        top: float | str = "+inf" if after is None else after[0] // 1000
        batch = max(limit * 2, 50)
        offset = 0
        while len(found) < limit:
            names: list[Any] = await self._redis.zrevrangebyscore(
                f"{self._prefix}:order", top, "-inf", start=offset, num=batch
            )
            if not names:
                break
            offset += len(names)
            records = await self._redis.mget([self._key(_text(n)) for n in names])
            ordered = sorted(
                (_record(data) for data in records if data is not None),
                key=lambda w: (w.create_time.ToNanoseconds(), w.name),
                reverse=True,
            )
            for workflow in ordered:
                position = (workflow.create_time.ToNanoseconds(), workflow.name)
                if after is not None and position >= after:
                    continue
                if where.states and workflow.state not in where.states:
                    continue
                if where.kinds and workflow.kind not in where.kinds:
                    continue
                if where.tenant is not None and tenant_of(workflow) != where.tenant:
                    continue  # access: another tenant's record
                found.append(workflow)
        return found[:limit]

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """Records still PENDING or RUNNING (on any replica)."""
        names = await self._redis.smembers(f"{self._prefix}:unfinished")
        keys = [self._key(_text(n)) for n in names]
        records = await self._redis.mget(keys) if keys else []
        return [_record(d) for d in records if d is not None]

    async def close(self) -> None:
        """Nothing to flush: every save is sent before it returns."""


# One atomic bucket update: refill by elapsed time, then spend a token or say how long to wait.
_TAKE = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or ARGV[2])
local stamp = tonumber(redis.call('HGET', KEYS[1], 's') or ARGV[3])
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class RedisTokenBuckets:
    """Token buckets shared by every replica (one Redis hash per caller, updated by a Lua
    script so concurrent replicas never double-spend)."""

    def __init__(
        self, client: aioredis.Redis, *, rate: float, burst: int, prefix: str = "ponder:gateway"
    ) -> None:
        self._redis = client
        self._rate = rate
        self._burst = burst
        self._prefix = prefix
        self._script = client.register_script(_TAKE)

    async def take(self, caller: str) -> float:
        """Spend one token; 0, or the seconds until one is free."""
        wait = await self._script(
            keys=[f"{self._prefix}:bucket:{caller}"],
            args=[self._rate, self._burst, time.time()],
        )
        return float(wait)
