"""Retention: finished workflow records older than the retention period (by their last
update) are purged in the background, a batch per transaction, with their events; a result
goes with the last record that refers to it. Counted by the `ponder.workflow.purged` metric."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from opentelemetry.metrics import Meter

from ponder_gateway.metrics import WORKFLOWS_PURGED, no_op_meter
from ponder_gateway.store import WorkflowStore
from ponder_gateway.workflows.events import EventLog
from ponder_runtime.tasks import cancel_and_wait


logger = logging.getLogger(__name__)


class Retention:
    """Purges what is past `keep` every `every` seconds (`now`: epoch seconds, injectable)."""

    def __init__(
        self,
        store: WorkflowStore,
        log: EventLog,
        *,
        keep: timedelta,
        every: float = 60.0,
        batch: int = 500,
        meter: Meter | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._log = log
        self._keep = keep
        self._every = every
        self._batch = batch
        self._now = now
        self._purged = (meter or no_op_meter()).create_counter(
            WORKFLOWS_PURGED, unit="{workflow}", description="Workflow records purged (retention)"
        )
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """Purge every record now due, a batch at a time; how many went."""
        if self._keep <= timedelta(0):
            return 0
        cutoff = int((self._now() - self._keep.total_seconds()) * 1e9)
        total = 0
        while True:
            names = await self._store.purge(cutoff, limit=self._batch)
            if names:
                await self._log.delete(names)
                self._purged.add(len(names))
                total += len(names)
            if len(names) < self._batch:
                break
            await asyncio.sleep(0)  # let requests in between batches
        if total:
            logger.info("workflow records purged", extra={"count": total})
        return total

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # a store outage: the next sweep tries again
                logger.warning(
                    "retention sweep failed", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
            await asyncio.sleep(self._every)

    def start(self) -> None:
        """Sweep in the background (nothing when records are kept forever)."""
        if self._keep > timedelta(0) and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="workflow-retention")

    async def stop(self) -> None:
        """Stop sweeping."""
        await cancel_and_wait(self._task)
        self._task = None
