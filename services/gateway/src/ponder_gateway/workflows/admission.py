"""How many workflows a gateway takes: running ones up to a limit, then a queue, then
RESOURCE_EXHAUSTED; and the workflow metrics (duration by outcome, in flight)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from opentelemetry.metrics import Meter

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.metrics import (
    WORKFLOW_DURATION,
    WORKFLOW_IN_FLIGHT,
    WORKFLOW_KIND,
    WORKFLOW_OUTCOME,
    no_op_meter,
)
from ponder_gateway.workflows.events import FINAL_STATES
from ponder_runtime import ResourceExhaustedError


def enum_name(
    enum: type[workflow_pb2.WorkflowKind] | type[workflow_pb2.WorkflowState], value: int
) -> str:
    """The value's name without the enum's prefix: WORKFLOW_STATE_SUCCEEDED -> SUCCEEDED."""
    return enum.Name(value).split("_", 2)[2]


class Admission:
    """Counts workflows in (running or queued) and hands out running slots."""

    def __init__(
        self, *, max_running: int = 64, max_queued: int = 256, meter: Meter | None = None
    ) -> None:
        self._slots = asyncio.Semaphore(max_running)
        self._capacity = max_running + max_queued
        self._admitted = 0
        meter = meter or no_op_meter()
        self._duration = meter.create_histogram(
            WORKFLOW_DURATION, unit="s", description="Workflow executions, by kind and outcome."
        )
        self._in_flight = meter.create_up_down_counter(
            WORKFLOW_IN_FLIGHT, unit="{workflow}", description="Workflows executing or queued."
        )

    def admit(self) -> None:
        """Count a workflow in; RESOURCE_EXHAUSTED beyond capacity."""
        if self._admitted >= self._capacity:
            raise ResourceExhaustedError(
                f"{self._admitted} workflows are running or queued (the limit); retry later",
                retry_after_seconds=5.0,
            )
        self._admitted += 1

    def release(self) -> None:
        """Count a workflow out."""
        self._admitted -= 1

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Admit for the body's duration."""
        self.admit()
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def measured(self, workflow: workflow_pb2.Workflow) -> AsyncIterator[None]:
        """Count the workflow in flight, and its duration by final outcome."""
        started = time.perf_counter()
        kind = {WORKFLOW_KIND: enum_name(workflow_pb2.WorkflowKind, workflow.kind)}
        self._in_flight.add(1, kind)
        try:
            yield
        finally:
            self._in_flight.add(-1, kind)
            outcome = (
                enum_name(workflow_pb2.WorkflowState, workflow.state)
                if workflow.state in FINAL_STATES
                else "ERROR"  # an unexpected exception, or cancelled while queued
            )
            self._duration.record(
                time.perf_counter() - started, {**kind, WORKFLOW_OUTCOME: outcome}
            )

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A running slot (waits in the queue for one)."""
        async with self._slots:
            yield
