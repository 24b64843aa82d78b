"""The gateway's webhook deliveries in the background: one task per workflow whose webhook is
due, started when the workflow ends (or, on the Temporal engine, when the gateway sees it end),
and a sweep that takes over deliveries nobody is making: at start-up (left by a stopped
gateway) and, when records are shared (Redis, or Temporal workers), every few seconds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import Filter, parse
from ponder_gateway.record_plan import Page
from ponder_gateway.webhooks.delivery import Deliverer
from ponder_gateway.webhooks.state import OPEN_DELIVERY_STATES
from ponder_runtime.tasks import cancel_and_wait


logger = logging.getLogger(__name__)
_PAGE = 200
DAY = 86400.0


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Listing(Protocol):
    """The part of the WorkflowStore a sweep uses."""

    async def list(self, where: Filter, *, limit: int, after: tuple[int, str] | None) -> Page:
        """A page of records, newest first, and where the next one starts."""
        ...


class Notifier:
    """Runs deliveries as tasks of this process; drained (not finished) at shutdown, so a
    durable store keeps them for the next start."""

    def __init__(
        self,
        deliverer: Deliverer,
        records: Listing,
        *,
        window_seconds: float,
        sweep_seconds: float | None,
        takeover_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._deliverer = deliverer
        self._records = records
        self._window = window_seconds
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
        shared."""
        await self.sweep()
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

    async def sweep(self) -> int:
        """Start the deliveries of recently ended workflows that are due and that no one
        has attempted for the takeover time; how many were started."""
        now = self._clock()
        # Ended within twice the retry time (update_time is the end: delivery saves keep it),
        # so created at most a day before that (no workflow runs that long): the create_time
        # bound lets SQLite use its index.
        ended, created = _rfc3339(now - 2 * self._window), _rfc3339(now - 2 * self._window - DAY)
        where = parse(
            f'create_time >= "{created}" AND update_time >= "{ended}" '
            "AND NOT (state = PENDING OR state = RUNNING)"
        )
        started = 0
        after: tuple[int, str] | None = None
        while True:
            page = await self._records.list(where, limit=_PAGE, after=after)
            for record in page.workflows:
                if self._abandoned(record, now):
                    self._spawn(record.name)
                    started += 1
            if page.next_after is None:  # a short page may go on (a bounded scan): the token
                break
            after = page.next_after
        if started:
            logger.info("webhook deliveries taken over", extra={"count": started})
        return started

    def _abandoned(self, record: workflow_pb2.Workflow, now: float) -> bool:
        """An open delivery not running here whose due time passed the takeover time ago."""
        delivery = record.notification_delivery
        if not record.HasField("notification") or delivery.state not in OPEN_DELIVERY_STATES:
            return False
        if record.name in self._tasks:
            return False
        due = float(delivery.next_attempt_time.ToNanoseconds()) / 1e9
        return now >= due + self._takeover

    async def drain(self) -> None:
        """Stop the sweep and the deliveries (their state stays on the records)."""
        await cancel_and_wait(*self._tasks.values(), self._sweeper)
        self._sweeper = None
