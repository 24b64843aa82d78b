"""What the gateway does while Redis is away (and how it comes back without a restart).

- Workflow records: a workflow is acknowledged as created only once its PENDING record is in
  Redis; if Redis cannot take it, the create is refused with UNAVAILABLE (nothing to lose,
  the caller retries). Later writes of an acknowledged workflow (RUNNING, the result) are kept
  in memory, served from there, and written in order once Redis answers again (a background
  writer tries every `retry_seconds`). Reads that need Redis answer UNAVAILABLE. At most
  `max_pending` records wait: past that, a workflow about to run (RUNNING) is refused with
  UNAVAILABLE before any work; a final state is always kept.
- Rate limits: each replica falls back to its own in-memory bucket (same rate and burst, so
  N replicas allow up to N times the rate while Redis is away); Redis is tried again after
  `retry_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.access import Buckets
from ponder_gateway.filters import Filter
from ponder_gateway.record_plan import Page
from ponder_gateway.store import WorkflowStore
from ponder_runtime import UnavailableError


logger = logging.getLogger(__name__)

# What a call to Redis raises when the server is gone (refused, reset, timed out).
REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError, asyncio.TimeoutError)


def open_redis(url: str) -> aioredis.Redis:
    """A client that rides out a blip (two quick retries) but tells an outage within about
    a quarter of a second (redis-py's default retries for ~5 s, on every call)."""
    return aioredis.from_url(
        url,
        socket_timeout=10,
        socket_connect_timeout=2,
        retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.1), retries=2),
    )


def _copy(workflow: workflow_pb2.Workflow) -> workflow_pb2.Workflow:
    copy = workflow_pb2.Workflow()
    copy.CopyFrom(workflow)
    return copy


class OutageTolerantStore:
    """A WorkflowStore over Redis that refuses creations and buffers updates while Redis is
    unreachable (see the module's docstring)."""

    def __init__(
        self,
        inner: WorkflowStore,
        *,
        retry_seconds: float = 0.5,
        close_wait_seconds: float = 5.0,
        max_pending: int = 10_000,
    ) -> None:
        self._inner = inner
        self._max_pending = max_pending
        self._retry = retry_seconds
        self._close_wait = close_wait_seconds
        self._pending: dict[str, workflow_pb2.Workflow] = {}  # insertion order = write order
        self._writer: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Records waiting for Redis."""
        return len(self._pending)

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Write the record; a new (PENDING) one is refused with UNAVAILABLE if Redis cannot
        take it, a later version is kept and written when Redis is back."""
        if workflow.name in self._pending:  # keep the order: never overtake an older version
            self._pending[workflow.name] = _copy(workflow)
            return
        try:
            await self._inner.save(workflow)
        except REDIS_DOWN as exc:
            if workflow.state == workflow_pb2.WORKFLOW_STATE_PENDING:  # not acknowledged yet
                raise UnavailableError(
                    f"the workflow store (Redis) cannot be reached ({type(exc).__name__}); "
                    f"{workflow.name} was not created: retry",
                    retry_after_seconds=1.0,
                ) from exc
            full = len(self._pending) >= self._max_pending
            if full and workflow.state == workflow_pb2.WORKFLOW_STATE_RUNNING:  # before any work
                raise UnavailableError(
                    f"the workflow store (Redis) cannot be reached and {self._max_pending} "
                    "records already wait for it; retry",
                    retry_after_seconds=1.0,
                ) from exc
            self._keep(workflow, exc)  # a final state is always kept

    async def insert(self, workflow: workflow_pb2.Workflow) -> None:
        """Record a new workflow: a creation, refused with UNAVAILABLE if Redis cannot take
        it (never kept: it is not acknowledged until Redis has it)."""
        try:
            await self._inner.insert(workflow)
        except REDIS_DOWN as exc:
            raise UnavailableError(
                f"the workflow store (Redis) cannot be reached ({type(exc).__name__}); "
                f"{workflow.name} was not created: retry",
                retry_after_seconds=1.0,
            ) from exc

    def _keep(self, workflow: workflow_pb2.Workflow, exc: BaseException) -> None:
        if not self._pending:
            logger.warning(
                "Redis unreachable: workflow records are kept in memory until it is back",
                extra={"error": f"{type(exc).__name__}: {exc}"[:200]},
            )
        self._pending[workflow.name] = _copy(workflow)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="redis-record-writer")

    async def _write_pending(self) -> None:
        """Every retry period, write the kept records in order until none is left."""
        written = 0
        while self._pending:
            await asyncio.sleep(self._retry)
            written += await self._flush()
        logger.warning("Redis is back: kept workflow records written", extra={"records": written})

    async def _flush(self) -> int:
        """Write what is kept, oldest first; stop at the first failure. How many went."""
        written = 0
        for name, workflow in list(self._pending.items()):
            try:
                await self._inner.save(workflow)
            except REDIS_DOWN:
                return written
            if self._pending.get(name) is workflow:
                del self._pending[name]
            written += 1
        return written

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """A record by name: the kept version first, else Redis (UNAVAILABLE if away)."""
        kept = self._pending.get(name)
        if kept is not None:
            return _copy(kept)
        try:
            return await self._inner.get(name)
        except REDIS_DOWN as exc:
            raise _unavailable("read", exc) from exc

    async def list(self, where: Filter, *, limit: int, after: tuple[int, str] | None) -> Page:
        """A page from Redis, with kept versions in place of the stored ones."""
        try:
            page = await self._inner.list(where, limit=limit, after=after)
        except REDIS_DOWN as exc:
            raise _unavailable("list", exc) from exc
        page.workflows = [
            _copy(self._pending[w.name]) if w.name in self._pending else w for w in page.workflows
        ]
        return page

    async def delete(self, name: str) -> bool:
        """Delete in Redis (UNAVAILABLE if away), and a version kept for it."""
        try:
            deleted = await self._inner.delete(name)
        except REDIS_DOWN as exc:
            raise _unavailable("delete", exc) from exc
        return self._pending.pop(name, None) is not None or deleted

    async def due(
        self, before_ns: int, *, limit: int, after: tuple[int, str] | None = None
    ) -> Sequence[workflow_pb2.Workflow]:
        """Due deliveries from Redis (the error as is when Redis is away: the sweep tries
        again later), with kept versions in place of the stored ones."""
        records = await self._inner.due(before_ns, limit=limit, after=after)
        return [_copy(self._pending[w.name]) if w.name in self._pending else w for w in records]

    async def purge(self, before_ns: int, *, limit: int) -> Sequence[str]:
        """Purge in Redis (the error as is when Redis is away: the sweep tries again later)."""
        return await self._inner.purge(before_ns, limit=limit)

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """Unfinished records (UNAVAILABLE if Redis is away)."""
        try:
            return await self._inner.unfinished()
        except REDIS_DOWN as exc:
            raise _unavailable("read", exc) from exc

    async def close(self) -> None:
        """Try for a while to write what is kept, say what could not be, close."""
        deadline = time.monotonic() + self._close_wait
        while self._pending and time.monotonic() < deadline:
            await self._flush()
            if self._pending:
                await asyncio.sleep(self._retry)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._pending:
            logger.error(
                "Redis still unreachable at shutdown: kept workflow records not written "
                "(the next start resolves their workflows as FAILED)",
                extra={"records": len(self._pending), "names": list(self._pending)[:20]},
            )
        await self._inner.close()


def _unavailable(what: str, exc: BaseException) -> UnavailableError:
    return UnavailableError(
        f"the workflow store (Redis) cannot be reached to {what} ({type(exc).__name__}); retry",
        retry_after_seconds=1.0,
    )


class FallbackBuckets:
    """Rate limits shared through Redis, falling back to a local bucket while Redis is
    unreachable (tried again every `retry_seconds`)."""

    def __init__(
        self,
        shared: Buckets,
        local: Buckets,
        *,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = local
        self._retry = retry_seconds
        self._clock = clock
        self._down_until: float | None = None

    @property
    def falling_back(self) -> bool:
        """Whether the last attempt at Redis failed."""
        return self._down_until is not None

    async def take(self, caller: str) -> float:
        """Spend a token from the shared bucket, or the local one while Redis is away."""
        if self._down_until is None or self._clock() >= self._down_until:
            try:
                wait = await self._shared.take(caller)
            except REDIS_DOWN as exc:
                if self._down_until is None:
                    logger.warning(
                        "Redis unreachable: rate limits use this replica's local buckets",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:200]},
                    )
                self._down_until = self._clock() + self._retry
            else:
                if self._down_until is not None:
                    logger.warning("Redis is back: rate limits are shared again")
                    self._down_until = None
                return wait
        return await self._local.take(caller)
