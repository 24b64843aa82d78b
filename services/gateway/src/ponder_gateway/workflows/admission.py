"""How many workflows a gateway takes: running ones up to a limit, then a queue, then
RESOURCE_EXHAUSTED; and the workflow metrics (duration by outcome, in flight)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
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


@functools.lru_cache(maxsize=64)  # a pure function of its (hashable) arguments
def enum_name(
    enum: type[workflow_pb2.WorkflowKind] | type[workflow_pb2.WorkflowState], value: int
) -> str:
    """The value's name without the enum's prefix: WORKFLOW_STATE_SUCCEEDED -> SUCCEEDED."""
    return enum.Name(value).split("_", 2)[2]


class _Admitted:
    """Admission.admitted's context (a class: cheaper to enter than a generator's)."""

    __slots__ = ("_admission",)

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    async def __aenter__(self) -> None:
        self._admission.admit()

    async def __aexit__(self, *_: object) -> None:
        self._admission.release()


class _Measured:
    """Admission.measured's context: the workflow in flight, then its duration by outcome."""

    __slots__ = ("_admission", "_kind", "_started", "_workflow")

    def __init__(self, admission: Admission, workflow: workflow_pb2.Workflow) -> None:
        self._admission = admission
        self._workflow = workflow
        self._kind = {WORKFLOW_KIND: enum_name(workflow_pb2.WorkflowKind, workflow.kind)}
        self._started = 0.0

    async def __aenter__(self) -> None:
        self._started = time.perf_counter()
        self._admission.in_flight.add(1, self._kind)

    async def __aexit__(self, *_: object) -> None:
        workflow = self._workflow
        self._admission.in_flight.add(-1, self._kind)
        outcome = (
            enum_name(workflow_pb2.WorkflowState, workflow.state)
            if workflow.state in FINAL_STATES
            else "ERROR"  # an unexpected exception, or cancelled while queued
        )
        self._admission.duration.record(
            time.perf_counter() - self._started, {**self._kind, WORKFLOW_OUTCOME: outcome}
        )


class Admission:
    """Counts workflows in (running or queued) and hands out running slots."""

    def __init__(
        self, *, max_running: int = 64, max_queued: int = 256, meter: Meter | None = None
    ) -> None:
        self._slots = asyncio.Semaphore(max_running)
        self._capacity = max_running + max_queued
        self._admitted = 0
        meter = meter or no_op_meter()
        self.duration = meter.create_histogram(
            WORKFLOW_DURATION, unit="s", description="Workflow executions, by kind and outcome."
        )
        self.in_flight = meter.create_up_down_counter(
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

    def admitted(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Admit for the body's duration."""
        return _Admitted(self)

    def measured(
        self, workflow: workflow_pb2.Workflow
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Count the workflow in flight, and its duration by final outcome."""
        return _Measured(self, workflow)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A running slot (waits in the queue for one)."""
        async with self._slots:
            yield
