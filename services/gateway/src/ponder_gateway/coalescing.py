"""Duplicate coalescing: a create or run identical to a workflow still running joins it (or is
rejected, or waits behind it: WorkflowParameters.multitask_strategy).

Identical means: the same tenant and cache scope, kind, topic (trimmed, lower-cased, runs of
whitespace made one space) and resolved parameters (defaults applied, sources in any order,
budgets and the completion webhook's target included; the strategy itself aside). The
running workflow of each identity is kept in an index: in this process, or in Redis (SET NX
with an expiry) so that every replica sees it. A claim outlives a crashed replica by at most
its expiry; a claim whose workflow is gone or finished is taken over."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.parameters import RunParameters
from ponder_gateway.workflows.events import FINAL_STATES
from ponder_runtime import NotFoundError
from ponder_runtime.redis_values import as_text


logger = logging.getLogger(__name__)

# What a call to Redis raises while it is unreachable.
_REDIS_DOWN = (RedisError, OSError, TimeoutError)

# How long a follower waits for the record of a workflow whose claim it saw (the leader
# claims, then saves the record).
APPEAR_SECONDS = 5.0
_APPEAR_POLL_SECONDS = 0.05
# How often a joined run reads the workflow it waits for: from the first to the last pause.
_FIRST_PAUSE_SECONDS = 0.02
_LAST_PAUSE_SECONDS = 0.5


def identity(tenant: str, topic: str, params: RunParameters) -> str:
    """The key two identical requests share (a SHA-256 hex digest)."""
    fields = [
        tenant,
        params.cache_scope,
        int(params.kind),
        " ".join(topic.split()).casefold(),
        sorted(int(source) for source in params.sources),
        params.max_sources,
        params.max_iterations,
        round(params.score_threshold, 4),
        int(params.cache_policy),
        params.max_tokens,
        round(params.max_cost_usd, 9),
        # A caller who asks for a webhook is told by it: twins must notify the same target.
        [params.notification.url, params.notification.secret_name]
        if params.notification is not None
        else None,
    ]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


class RunningIndex(Protocol):
    """Which workflow runs for each identity."""

    async def claim(self, key: str, name: str) -> str | None:
        """Record `name` as running for `key`: None when it now is, else the name of the
        workflow that already holds `key`."""
        ...

    async def release(self, key: str, name: str) -> None:
        """Forget `key`, if `name` still holds it."""
        ...


class MemoryRunningIndex:
    """The index in this process (one gateway, or the Temporal engine without Redis)."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}

    async def claim(self, key: str, name: str) -> str | None:
        """Claim `key` for `name` (atomic: no await in between)."""
        holder = self._holders.setdefault(key, name)
        return None if holder == name else holder

    async def release(self, key: str, name: str) -> None:
        """Forget `key` if `name` holds it."""
        if self._holders.get(key) == name:
            del self._holders[key]


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisRunningIndex:
    """The index in Redis, shared by replicas: SET NX EX claims, compare-and-delete releases."""

    def __init__(
        self, client: aioredis.Redis, *, ttl_seconds: float, prefix: str = "ponder:gateway"
    ) -> None:
        self._redis = client
        self._ttl = max(1, int(ttl_seconds))
        self._prefix = prefix
        self._release = client.register_script(_RELEASE)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:running:{key}"

    async def claim(self, key: str, name: str) -> str | None:
        """Claim `key` for `name` unless another workflow holds it."""
        while True:
            if await self._redis.set(self._key(key), name, nx=True, ex=self._ttl):
                return None
            holder = await self._redis.get(self._key(key))
            if holder is not None:  # else it expired in between: claim again
                text = as_text(holder)
                return None if text == name else text

    async def release(self, key: str, name: str) -> None:
        """Delete the claim if `name` holds it."""
        await self._release(keys=[self._key(key)], args=[name])


class FallbackRunningIndex:
    """The shared index, or this replica's own while Redis is unreachable (requests then join
    only twins on the same replica); logged once per outage."""

    def __init__(self, shared: RunningIndex, local: RunningIndex) -> None:
        self._shared = shared
        self._local = local
        self._down = False

    def _outage(self, exc: Exception) -> None:
        if not self._down:
            logger.warning(
                "coalescing uses this replica's own index: Redis is unreachable",
                extra={"error": str(exc)},
            )
        self._down = True

    async def claim(self, key: str, name: str) -> str | None:
        """Claim in Redis, or locally while it is away."""
        try:
            holder = await self._shared.claim(key, name)
        except _REDIS_DOWN as exc:
            self._outage(exc)
            return await self._local.claim(key, name)
        self._down = False
        return holder

    async def release(self, key: str, name: str) -> None:
        """Release wherever the claim may be."""
        await self._local.release(key, name)
        try:
            await self._shared.release(key, name)
        except _REDIS_DOWN as exc:
            self._outage(exc)  # the claim expires on its own


Get = Callable[[str], Awaitable[workflow_pb2.Workflow]]


class Coalescer:
    """Finds the running twin of a request, and waits for a workflow's end."""

    def __init__(self, index: RunningIndex, get: Get) -> None:
        self._index = index
        self._get = get

    async def lead_or_join(self, key: str, name: str) -> workflow_pb2.Workflow | None:
        """None when `name` now holds `key` (run it, then `release`); else the running
        workflow that holds it (a stale claim is taken over first)."""
        while True:
            holder = await self._index.claim(key, name)
            if holder is None:
                return None
            running = await self._running(holder)
            if running is not None:
                return running
            await self._index.release(key, holder)

    async def release(self, key: str, name: str) -> None:
        """`name` no longer runs for `key`."""
        await self._index.release(key, name)

    async def _running(self, name: str) -> workflow_pb2.Workflow | None:
        """The workflow `name` while it runs; None once finished, or if its record does not
        appear within APPEAR_SECONDS."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + APPEAR_SECONDS
        while True:
            try:
                workflow = await self._get(name)
            except NotFoundError:
                if loop.time() >= give_up:
                    return None
                await asyncio.sleep(_APPEAR_POLL_SECONDS)
                continue
            return None if workflow.state in FINAL_STATES else workflow

    async def ended(self, name: str) -> workflow_pb2.Workflow:
        """The workflow `name` once it has ended: read again and again, from every 20 ms
        (a live workflow of this replica is read from memory) to every half second."""
        pause = _FIRST_PAUSE_SECONDS
        while True:
            workflow = await self._get(name)
            if workflow.state in FINAL_STATES:
                return workflow
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, _LAST_PAUSE_SECONDS)
