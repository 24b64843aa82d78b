"""The gateway's webhook deliveries in the background: one task per workflow whose webhook is
due, started when the workflow ends (or, on the Temporal engine, when the gateway sees it end),
and a sweep that takes over deliveries nobody is making: at start-up (left by a stopped
gateway) and, when records are shared (Redis, or Temporal workers), every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.webhooks.delivery import Deliverer
from ponder_gateway.webhooks.state import OPEN_DELIVERY_STATES, due_at


logger = logging.getLogger(__name__)
_PAGE = 200
_ALL = 2**62  # ns: a due bound past every delivery


class DueRecords(Protocol):
    """The part of the WorkflowStore a sweep uses."""

    async def due(
        self, before_ns: int, *, limit: int, after: tuple[int, str] | None = None
    ) -> Sequence[workflow_pb2.Workflow]:
        """Records with an open delivery due by `before_ns`, soonest first, after a (due ns,
        name) position."""
        ...


class Notifier:
    """Runs deliveries as tasks of this process; drained (not finished) at shutdown, so a
    durable store keeps them for the next start."""

    def __init__(
        self,
        deliverer: Deliverer,
        records: DueRecords,
        *,
        sweep_seconds: float | None,
        takeover_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._deliverer = deliverer
        self._records = records
        self._sweep_seconds = sweep_seconds
        self._takeover = takeover_seconds
        self._clock = clock
        self._sleep = sleep
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def notify(self, workflow: workflow_pb2.Workflow) -> None:
        """Deliver the webhook of a workflow that just ended (if it has one)."""
        if workflow.HasField("notification") and (
            workflow.notification_delivery.state in OPEN_DELIVERY_STATES
        ):
            self._spawn(workflow.name)

    def _spawn(self, name: str) -> None:
        if name in self._tasks:
            return
        task = asyncio.create_task(self._run(name), name=f"webhook {name}")
        self._tasks[name] = task

    async def _run(self, name: str) -> None:
        try:
            await self._deliverer.deliver(name)
        except asyncio.CancelledError:
            raise
        except Exception:  # a store outage: the sweep (or the next start) takes it over
            logger.exception("webhook delivery stopped", extra={"workflow": name})
        finally:
            self._tasks.pop(name, None)

    async def idle(self) -> None:
        """Wait until no delivery runs in this process (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def start(self) -> None:
        """Take over what a stopped process left, then keep sweeping when records are
        shared. Records this gateway alone delivers (no sweep): every open delivery, also
        those waiting out a backoff (each task waits for its due time)."""
        await self.sweep(everything=self._sweep_seconds is None)
        if self._sweep_seconds is not None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="webhook sweep")

    async def _sweep_forever(self) -> None:
        assert self._sweep_seconds is not None
        while True:
            await self._sleep(self._sweep_seconds)
            try:
                await self.sweep()
            except Exception:  # the store is away: try again next time
                logger.warning("webhook sweep failed", exc_info=True)

    async def sweep(self, *, everything: bool = False) -> int:
        """Start the open deliveries not running here whose due time passed the takeover
        time ago (`everything`: due or not), from the store's index of open deliveries
        (records with nothing to deliver are never read); how many were started."""
        before = _ALL if everything else int((self._clock() - self._takeover) * 1e9)
        started = 0
        after: tuple[int, str] | None = None
        while True:
            records = await self._records.due(before, limit=_PAGE, after=after)
            for record in records:
                if record.name not in self._tasks:
                    self._spawn(record.name)
                    started += 1
            if len(records) < _PAGE:
                break
            after = (due_at(records[-1]) or 0, records[-1].name)
        if started:
            logger.info("webhook deliveries taken over", extra={"count": started})
        return started

    async def drain(self) -> None:
        """Stop the sweep and the deliveries (their state stays on the records)."""
        tasks = list(self._tasks.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._sweeper = None
