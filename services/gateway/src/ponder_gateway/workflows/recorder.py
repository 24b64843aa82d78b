"""The one recorder of steps: a step is RUNNING while its body runs, then SUCCEEDED (or what
the body set), or FAILED on an error; every change is an event, and records are saved.

`Recorder` is pure bookkeeping (deterministic given its clock, so a Temporal workflow can use
it); the I/O goes through a `Sink`: `StoreSink` writes the records and the event log."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from google.protobuf import timestamp_pb2
from opentelemetry.trace import Span, StatusCode, Tracer

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.store import WorkflowStore
from ponder_gateway.webhooks.state import mark_ended
from ponder_gateway.workflows.events import EventLog, Wakeups, make_event
from ponder_runtime.attributes import STEP_MESSAGE, STEP_STATE, WORKFLOW_STEP


logger = logging.getLogger(__name__)
# STEP_STATE_SUCCEEDED -> "SUCCEEDED", for the step spans.
_STEP_STATES = {
    value.number: value.name.removeprefix("STEP_STATE_")
    for value in workflow_pb2.StepState.DESCRIPTOR.values
}
Clock = Callable[[], timestamp_pb2.Timestamp]


class Sink(Protocol):
    """Where a workflow's events and records go."""

    async def event(
        self,
        workflow: workflow_pb2.Workflow,
        event_type: workflow_pb2.WorkflowEventType,
        step: workflow_pb2.WorkflowStep | None = None,
    ) -> None:
        """Append an event carrying the workflow (and the step that changed)."""
        ...

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Save the workflow's record (durable on return)."""
        ...


class StoreSink:
    """Records in the WorkflowStore, events in the EventLog (only for `watched` workflows:
    a synchronous run has no watchers and pays no event writes). With `new`, the first save
    is the workflow's creation (a created cache hit's one write): an insert, ALREADY_EXISTS
    when its name is taken (WorkflowStore.insert)."""

    def __init__(
        self,
        store: WorkflowStore,
        log: EventLog,
        wakeups: Wakeups,
        *,
        watched: bool,
        new: bool = False,
    ) -> None:
        self._new = new
        self._store = store
        self._log = log
        self._wakeups = wakeups
        self._watched = watched

    async def event(
        self,
        workflow: workflow_pb2.Workflow,
        event_type: workflow_pb2.WorkflowEventType,
        step: workflow_pb2.WorkflowStep | None = None,
    ) -> None:
        """Append to the log and wake this process's watchers. The log is best effort: when
        its store cannot take the event (Redis away), the workflow goes on and says so in the
        log; watchers still get its end from the record (events.follow)."""
        if not self._watched:
            return
        try:
            await self._log.append(workflow.name, make_event(workflow, event_type, step))
        except Exception as exc:  # any store failure: the workflow must not die of it
            logger.warning(
                "workflow event not recorded: the event log is unavailable",
                extra={"workflow": workflow.name, "error": f"{type(exc).__name__}: {exc}"},
            )
        last = event_type == workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED
        self._wakeups.notify(workflow.name, last=last)

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Save the record (insert it, the first time, when it is `new`)."""
        if self._new:
            self._new = False
            await self._store.insert(workflow)
            return
        await self._store.save(workflow)


class Recorder:
    """Steps, state changes and the end of one workflow, as records and events."""

    def __init__(self, sink: Sink, now: Clock, tracer: Tracer | None = None) -> None:
        self._sink = sink
        self.now = now
        self._tracer = tracer  # None: steps are not spans (nothing would record them)

    @contextlib.asynccontextmanager
    async def step(
        self, workflow: workflow_pb2.Workflow, name: str
    ) -> AsyncIterator[workflow_pb2.WorkflowStep]:
        """Record a step of `workflow` around the body (traced as a child span, when a tracer
        was given)."""
        workflow.steps.add(name=name, state=workflow_pb2.STEP_STATE_RUNNING, start_time=self.now())
        step = workflow.steps[-1]
        await self.progress(workflow, step)
        with self._span(name) as span:
            try:
                yield step
            except BaseException as exc:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = step.message or str(exc) or type(exc).__name__
                raise
            finally:
                step.end_time.CopyFrom(self.now())
                if step.state == workflow_pb2.STEP_STATE_RUNNING:
                    step.state = workflow_pb2.STEP_STATE_SUCCEEDED
                if span is not None:
                    state = _STEP_STATES[step.state]
                    span.set_attributes({STEP_STATE: state, STEP_MESSAGE: step.message})
                    if step.state == workflow_pb2.STEP_STATE_FAILED:
                        span.set_status(StatusCode.ERROR, step.message)
                await self.progress(workflow, step)

    def _span(self, name: str) -> contextlib.AbstractContextManager[Span | None]:
        """The step's span, current while its body runs; none without a tracer."""
        if self._tracer is None:
            return contextlib.nullcontext()
        return self._tracer.start_as_current_span(
            f"step {name}", attributes={WORKFLOW_STEP: name}, set_status_on_exception=False
        )

    async def progress(
        self, workflow: workflow_pb2.Workflow, step: workflow_pb2.WorkflowStep
    ) -> None:
        """A step changed (started, progressed, ended)."""
        await self._sink.event(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_UPDATED, step)

    async def running(self, workflow: workflow_pb2.Workflow, *, save: bool) -> None:
        """The workflow is RUNNING (saved when other readers should see it so)."""
        workflow.state = workflow_pb2.WORKFLOW_STATE_RUNNING
        workflow.update_time.CopyFrom(self.now())
        await self._sink.event(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_STATE_CHANGED)
        if save:
            await self._sink.save(workflow)

    async def finished(self, workflow: workflow_pb2.Workflow) -> None:
        """The workflow ended: its final record (with its webhook due), then its FINISHED
        event, the last thing a watcher waits for (one that sees the final record first makes
        the same FINISHED event from it, with the same number: see events.follow)."""
        workflow.update_time.CopyFrom(self.now())
        if not workflow.HasField("end_time"):
            workflow.end_time.CopyFrom(workflow.update_time)
        mark_ended(workflow, workflow.update_time)  # its webhook is due (if it has one)
        await self._sink.save(workflow)
        await self._sink.event(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED)
