"""Workflows end to end: the semantic cache in front, the runner, durable records, and the
long-running lifecycle (create, get, list, cancel, watch with live events)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
from opentelemetry import trace
from opentelemetry.metrics import Meter

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.cache import CacheUnavailableError, WorkflowCache
from ponder_gateway.filters import Filter
from ponder_gateway.metrics import (
    WORKFLOW_DURATION,
    WORKFLOW_IN_FLIGHT,
    WORKFLOW_KIND,
    WORKFLOW_OUTCOME,
    no_op_meter,
)
from ponder_gateway.parameters import RunParameters
from ponder_gateway.runner import WorkflowRunner, record_trace_id
from ponder_gateway.store import WorkflowStore
from ponder_runtime import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    PonderError,
    ResourceExhaustedError,
)
from ponder_runtime.attributes import (
    CACHE_CANDIDATE,
    CACHE_REASON,
    CACHE_REASON_CATEGORY,
    CACHE_RESULT,
    CACHE_SIMILARITY,
    CACHE_VERDICT,
)
from ponder_runtime.protobuf import timestamp


logger = logging.getLogger(__name__)

# How often a watcher without a local event feed re-reads the record.
_POLL_SECONDS = 0.5

FINAL_STATES = (
    workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
    workflow_pb2.WORKFLOW_STATE_FAILED,
    workflow_pb2.WORKFLOW_STATE_CANCELLED,
)


def _enum_name(
    enum: type[workflow_pb2.WorkflowKind] | type[workflow_pb2.WorkflowState], value: int
) -> str:
    """The value's name without the enum's prefix: WORKFLOW_STATE_SUCCEEDED -> SUCCEEDED."""
    return enum.Name(value).split("_", 2)[2]


@dataclass
class _Feed:
    """The event history of one live workflow and a way to wait for the next event."""

    events: list[workflow_pb2.WatchWorkflowResponse] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class WorkflowManager:
    """Runs workflows (cache, runner, records) and tracks the long-running ones."""

    def __init__(
        self,
        runner: WorkflowRunner,
        cache: WorkflowCache,
        store: WorkflowStore,
        *,
        max_running: int = 64,
        max_queued: int = 256,
        meter: Meter | None = None,
    ) -> None:
        self._runner = runner
        meter = meter or no_op_meter()
        self._duration = meter.create_histogram(
            WORKFLOW_DURATION, unit="s", description="Workflow executions, by kind and outcome."
        )
        self._in_flight = meter.create_up_down_counter(
            WORKFLOW_IN_FLIGHT, unit="{workflow}", description="Workflows executing or queued."
        )
        self._slots = asyncio.Semaphore(max_running)
        self._capacity = max_running + max_queued
        self._admitted = 0
        self._cache = cache
        self._store = store
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, workflow_pb2.Workflow] = {}
        self._feeds: dict[str, _Feed] = {}
        self._shutting_down = False
        runner.observer = self._on_step

    # -- the pipeline ---------------------------------------------------------------------

    def new(
        self, topic: str, params: RunParameters, workflow_id: str = ""
    ) -> workflow_pb2.Workflow:
        """A PENDING workflow resource."""
        workflow = self._runner.new_workflow(topic, params)
        if workflow_id:
            workflow.name, workflow.id = f"workflows/{workflow_id}", workflow_id
        return workflow

    async def execute(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        context: grpc.aio.ServicerContext | None,
    ) -> workflow_pb2.Workflow:
        """Answer from the cache or run, record the outcome; raise PonderError on failure
        (the record then says FAILED with the reason)."""
        self._live[workflow.name] = workflow
        started = time.perf_counter()
        kind = {WORKFLOW_KIND: _enum_name(workflow_pb2.WorkflowKind, params.kind)}
        self._in_flight.add(1, kind)
        try:
            with self._runner.traced(workflow):
                async with self._slots:
                    return await self._execute(workflow, params, context)
        finally:
            self._in_flight.add(-1, kind)
            outcome = (
                _enum_name(workflow_pb2.WorkflowState, workflow.state)
                if workflow.state in FINAL_STATES
                else "ERROR"  # an unexpected exception, or cancelled while queued
            )
            self._duration.record(
                time.perf_counter() - started, {**kind, WORKFLOW_OUTCOME: outcome}
            )

    def admit(self) -> None:
        """Count a workflow in (running or queued); RESOURCE_EXHAUSTED beyond capacity."""
        if self._admitted >= self._capacity:
            raise ResourceExhaustedError(
                f"{self._admitted} workflows are running or queued (the limit); retry later",
                retry_after_seconds=5.0,
            )
        self._admitted += 1

    def release(self) -> None:
        """Count a workflow out."""
        self._admitted -= 1

    async def _execute(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        context: grpc.aio.ServicerContext | None,
    ) -> workflow_pb2.Workflow:
        workflow.state = workflow_pb2.WORKFLOW_STATE_RUNNING
        workflow.update_time.CopyFrom(timestamp())
        record_trace_id(workflow)  # cache hits too
        self._event(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_STATE_CHANGED)
        try:
            if not await self._from_cache(workflow, params):
                # Recorded RUNNING only when it runs: a cache hit is done in a millisecond and
                # its one write is the finished record.
                await self._store.save(workflow)  # other replicas see it RUNNING
                await self._runner.run(workflow, params, context)
                await self._store_in_cache(workflow, params)
        except PonderError as exc:
            workflow.state = workflow_pb2.WORKFLOW_STATE_FAILED
            workflow.error.CopyFrom(exc.to_rpc_status())
            await self._finish(workflow)
            raise
        except asyncio.CancelledError:
            if self._shutting_down:  # not the caller's doing: the gateway is stopping
                workflow.state = workflow_pb2.WORKFLOW_STATE_FAILED
                workflow.error.code = grpc.StatusCode.ABORTED.value[0]
                workflow.error.message = (
                    "the gateway shut down before the workflow finished (grace period over)"
                )
            else:
                workflow.state = workflow_pb2.WORKFLOW_STATE_CANCELLED
                workflow.error.code = grpc.StatusCode.CANCELLED.value[0]
                workflow.error.message = "the workflow was cancelled"
            await asyncio.shield(self._finish(workflow))
            raise
        await self._finish(workflow)
        return workflow

    async def _from_cache(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> bool:
        policy = params.cache_policy
        with self._runner.step(workflow, "cache_lookup") as step:
            if policy != workflow_pb2.CACHE_POLICY_USE:
                step.state = workflow_pb2.STEP_STATE_SKIPPED
                step.message = workflow_pb2.CachePolicy.Name(policy)
                return False
            try:
                cached = await self._cache.lookup(workflow.topic, params)
            except CacheUnavailableError as exc:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = f"embedding service unavailable ({exc}): cache skipped"
                workflow.warnings.append(f"cache: {step.message}")
                return False
            workflow.cache.CopyFrom(cached.info())  # a miss says why too
            span = trace.get_current_span()  # the step's
            span.set_attributes(
                {
                    CACHE_VERDICT: cached.verdict_name(),
                    CACHE_REASON: cached.reason,
                    CACHE_REASON_CATEGORY: cached.category,
                    CACHE_CANDIDATE: cached.candidate_topic,
                    CACHE_SIMILARITY: cached.similarity,
                }
            )
            if cached.workflow is None:
                step.message = f"miss ({cached.explain()})"
                span.set_attribute(CACHE_RESULT, "miss")
                return False
            step.message = f"hit (similarity {cached.similarity:.3f}; {cached.explain()})"
            span.set_attribute(CACHE_RESULT, "hit")
        workflow.result.CopyFrom(cached.workflow.result)
        workflow.state = workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        workflow.end_time.CopyFrom(timestamp())
        started = workflow.create_time.ToNanoseconds()
        workflow.execution_time.FromNanoseconds(workflow.end_time.ToNanoseconds() - started)
        return True

    async def _store_in_cache(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> None:
        if params.cache_policy == workflow_pb2.CACHE_POLICY_BYPASS:
            return
        with self._runner.step(workflow, "cache_store") as step:
            try:
                await self._cache.store(workflow, params)
            except CacheUnavailableError as exc:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = f"embedding service unavailable ({exc}): result not cached"
                workflow.warnings.append(f"cache: {step.message}")

    async def _finish(self, workflow: workflow_pb2.Workflow) -> None:
        workflow.update_time.CopyFrom(timestamp())
        if not workflow.HasField("end_time"):
            workflow.end_time.CopyFrom(workflow.update_time)
        await self._store.save(workflow)
        self._event(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED)
        self._live.pop(workflow.name, None)

    # -- events ---------------------------------------------------------------------------

    def _event(
        self,
        workflow: workflow_pb2.Workflow,
        event_type: workflow_pb2.WorkflowEventType,
        step: workflow_pb2.WorkflowStep | None = None,
    ) -> None:
        feed = self._feeds.get(workflow.name)
        if feed is None:
            return
        event = workflow_pb2.WatchWorkflowResponse(
            event_type=event_type, sequence=len(feed.events) + 2, event_time=timestamp()
        )
        event.workflow.CopyFrom(workflow)
        if step is not None:
            event.step.CopyFrom(step)
        feed.events.append(event)
        feed.changed.set()
        feed.changed = asyncio.Event()

    def _on_step(self, workflow: workflow_pb2.Workflow, step: workflow_pb2.WorkflowStep) -> None:
        self._event(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_UPDATED, step)

    # -- long-running workflows -----------------------------------------------------------

    async def create(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str = "",
        *,
        tenant: str = "",
        on_done: Callable[[], None] | None = None,
    ) -> workflow_pb2.Workflow:
        """Record a PENDING workflow of `tenant` and start it in the background; `on_done`
        runs when it ends (access: the caller's workflow budget)."""
        name = f"workflows/{workflow_id}"
        if workflow_id and (name in self._tasks or await self._store.get(name)):
            raise AlreadyExistsError(f"{name} already exists", metadata={"name": name})
        self.admit()
        workflow = self.new(topic, params, workflow_id or str(uuid.uuid4()))
        workflow.tenant = tenant  # access: its owner (ownership.py)
        try:
            await self._store.save(workflow)
        except BaseException:
            self.release()
            raise
        self._feeds[workflow.name] = _Feed()
        task = asyncio.create_task(self._background(workflow, params, on_done), name=workflow.name)
        self._tasks[workflow.name] = task
        return workflow

    async def _background(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        try:
            await self.execute(workflow, params, None)
        except PonderError:
            pass  # recorded as FAILED by execute
        finally:
            self._tasks.pop(workflow.name, None)
            self._feeds.pop(workflow.name, None)  # watchers keep the feed object they hold
            self.release()
            if on_done is not None:
                on_done()

    async def get(self, name: str) -> workflow_pb2.Workflow:
        """A workflow by name (its live state while it runs)."""
        live = self._live.get(name)
        if live is not None:
            copy = workflow_pb2.Workflow()
            copy.CopyFrom(live)
            return copy
        stored = await self._store.get(name)
        if stored is None:
            raise NotFoundError(f"{name} does not exist", metadata={"name": name})
        return stored

    async def list(
        self, where: Filter, *, limit: int, after: tuple[int, str] | None
    ) -> list[workflow_pb2.Workflow]:
        """A page of records, newest first (live ones with their current state)."""
        page = await self._store.list(where, limit=limit, after=after)
        return [self._live.get(w.name, w) for w in page]

    async def cancel(self, name: str) -> workflow_pb2.Workflow:
        """Stop a pending or running workflow (its downstream calls are cancelled too)."""
        workflow = await self.get(name)
        task = self._tasks.get(name)
        if workflow.state in FINAL_STATES or task is None:
            raise FailedPreconditionError(
                f"{name} is {workflow_pb2.WorkflowState.Name(workflow.state)}: only a pending "
                "or running workflow can be cancelled",
                metadata={"name": name},
            )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return await self.get(name)

    async def watch(self, name: str) -> AsyncIterator[workflow_pb2.WatchWorkflowResponse]:
        """The workflow as it is now, then its events until it reaches a final state."""
        workflow = await self.get(name)
        yield self._snapshot(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_SNAPSHOT, 1)
        if workflow.state in FINAL_STATES:
            return
        feed = self._feeds.get(name)
        if feed is None:  # running on another replica (shared records), or just finished
            async for event in self._poll(workflow):
                yield event
            return
        seen = len(feed.events)
        while True:
            while seen < len(feed.events):
                event = feed.events[seen]
                seen += 1
                yield event
                if event.event_type == workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED:
                    return
            await feed.changed.wait()

    async def _poll(
        self, workflow: workflow_pb2.Workflow
    ) -> AsyncIterator[workflow_pb2.WatchWorkflowResponse]:
        """Follow a workflow through its record until it ends (state changes only)."""
        sequence = 1
        state = workflow.state
        while workflow.state not in FINAL_STATES:
            await asyncio.sleep(_POLL_SECONDS)
            workflow = await self.get(workflow.name)
            if workflow.state != state and workflow.state not in FINAL_STATES:
                sequence += 1
                state = workflow.state
                yield self._snapshot(
                    workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_STATE_CHANGED, sequence
                )
        yield self._snapshot(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED, sequence + 1)

    @staticmethod
    def _snapshot(
        workflow: workflow_pb2.Workflow, event_type: workflow_pb2.WorkflowEventType, sequence: int
    ) -> workflow_pb2.WatchWorkflowResponse:
        event = workflow_pb2.WatchWorkflowResponse(
            event_type=event_type, sequence=sequence, event_time=timestamp()
        )
        event.workflow.CopyFrom(workflow)
        return event

    # -- life cycle -----------------------------------------------------------------------

    async def recover(self, *, stale_after: float = 0.0) -> int:
        """At start: workflows a stopped process left unfinished are marked FAILED. With
        records shared by replicas, only those not updated for `stale_after` seconds (longer
        than any workflow can run) count as left behind."""
        count = 0
        cutoff = timestamp().ToNanoseconds() - int(stale_after * 1e9)
        for workflow in await self._store.unfinished():
            if workflow.update_time.ToNanoseconds() > cutoff:
                continue
            workflow.state = workflow_pb2.WORKFLOW_STATE_FAILED
            workflow.error.code = grpc.StatusCode.ABORTED.value[0]
            workflow.error.message = "the gateway stopped before the workflow finished"
            workflow.update_time.CopyFrom(timestamp())
            await self._store.save(workflow)
            count += 1
        if count:
            logger.warning("unfinished workflows marked failed", extra={"count": count})
        return count

    async def drain(self, grace: float) -> None:
        """Let running workflows finish within `grace`, then cancel (and record) the rest."""
        self._shutting_down = True
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._store.close()
