"""The worker's side of the Temporal engine: the activities (gRPC calls to the services, and
the local activity that writes records and events to the shared store).

Long calls heartbeat, so a cancelled workflow cancels the in-flight gRPC call and a dead
worker is noticed within the heartbeat timeout. The reflection checkpoints each finished
model call; its retry (on another worker) resumes from there: no finished call is paid twice.
A PonderError becomes an ApplicationError carrying its google.rpc.Status, not retried when
retrying cannot help (INVALID_ARGUMENT, FAILED_PRECONDITION, a result too large)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.cache import WorkflowCache
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import WorkflowStore
from ponder_gateway.upstream import Upstreams
from ponder_gateway.workflows.activities import GrpcActivities, Progress
from ponder_gateway.workflows.checkpoints import Checkpoints
from ponder_gateway.workflows.events import FINAL_STATES, EventLog, Wakeups
from ponder_gateway.workflows.recorder import StoreSink
from ponder_gateway.workflows.resource import parameters_of
from ponder_gateway.workflows.temporal_workflow import (
    LOOKUP_CACHE,
    RANK,
    RECORD,
    REFLECT,
    RESEARCH,
    STORE_CACHE,
    WAIT_FOR,
    CacheOutput,
    RankOutput,
    RecordInput,
    StepInput,
    cache_output,
    pack,
    unpack,
)
from ponder_runtime import PonderError


# Far below Temporal's 2 MB payload limit; a larger result fails at once, never retried.
MAX_RESULT_BYTES = 1024 * 1024
# Status codes retrying cannot fix: INVALID_ARGUMENT, FAILED_PRECONDITION.
NOT_RETRYABLE = (3, 9)
# Attempts of an activity whose call fails (UNAVAILABLE, DEADLINE_EXCEEDED, ...).
ERROR_ATTEMPTS = 3
HEARTBEAT_SECONDS = 1.0
# How often an enqueued workflow reads the record of the one it waits for.
WAIT_POLL_SECONDS = 0.5
# The streamed text a heartbeat carries (its tail).
HEARTBEAT_TEXT_CHARS = 2000


def _application_error(exc: PonderError) -> ApplicationError:
    """The failure for Temporal: retried (a crash's retries are not limited this way) while
    the code allows and fewer than ERROR_ATTEMPTS attempts were made."""
    status = exc.to_rpc_status()
    return ApplicationError(
        exc.message,
        pack(status),
        type=type(exc).__name__,
        non_retryable=status.code in NOT_RETRYABLE or activity.info().attempt >= ERROR_ATTEMPTS,
    )


def _checked(packed: str, what: str) -> str:
    """A result small enough for a Temporal payload; non-retryable otherwise."""
    if len(packed) > MAX_RESULT_BYTES:
        raise ApplicationError(
            f"the {what} result is {len(packed)} bytes, over the {MAX_RESULT_BYTES} allowed",
            type="ResultTooLarge",
            non_retryable=True,
        )
    return packed


@contextlib.asynccontextmanager
async def _heartbeating(details: Callable[[], Any]) -> AsyncIterator[None]:
    """Heartbeat every second while the body runs (so cancellation reaches it)."""

    async def beat() -> None:
        while True:
            activity.heartbeat(details())
            await asyncio.sleep(HEARTBEAT_SECONDS)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


def _reflect_key(name: str) -> str:
    return f"reflect:{name}"


class WorkerActivities:
    """The activities, over the worker's channels and the shared record store."""

    def __init__(
        self,
        upstreams: Upstreams,
        cache: WorkflowCache,
        settings: GatewaySettings,
        *,
        store: WorkflowStore,
        log: EventLog,
        checkpoints: Checkpoints,
    ) -> None:
        self._up = upstreams
        self._cache = cache
        self._settings = settings
        self._store = store
        self._log = log
        self._checkpoints = checkpoints

    def _sink(self, watched: bool) -> StoreSink:
        return StoreSink(self._store, self._log, Wakeups(), watched=watched)

    def _calls(self, progress: Progress | None = None, **extra: Any) -> GrpcActivities:
        async def nothing(_w: workflow_pb2.Workflow, _s: workflow_pb2.WorkflowStep) -> None:
            return None

        return GrpcActivities(
            self._up,
            self._cache,
            self._settings,
            timeout=lambda seconds: seconds,  # the activity's timeout adds a margin
            progress=progress or nothing,
            **extra,
        )

    def all(self) -> list[Callable[..., Any]]:
        """The activity functions to register with a worker."""
        return [
            self.record,
            self.lookup_cache,
            self.research,
            self.rank,
            self.reflect,
            self.store_cache,
            self.wait_for,
        ]

    @activity.defn(name=RECORD)
    async def record(self, given: RecordInput) -> None:
        """Append an event and/or save the record (the workflow's local activity)."""
        workflow = unpack(workflow_pb2.Workflow, given.workflow)
        sink = self._sink(given.watched)
        if given.event_type:
            step = unpack(workflow_pb2.WorkflowStep, given.step) if given.step else None
            event_type = cast(workflow_pb2.WorkflowEventType, given.event_type)
            await sink.event(workflow, event_type, step)
        if given.save:
            await sink.save(workflow)
            if workflow.state in (
                workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
                workflow_pb2.WORKFLOW_STATE_FAILED,
                workflow_pb2.WORKFLOW_STATE_CANCELLED,
            ):
                await self._checkpoints.delete(_reflect_key(workflow.name))

    @activity.defn(name=LOOKUP_CACHE)
    async def lookup_cache(self, given: StepInput) -> CacheOutput:
        """The semantic cache's answer."""
        workflow = unpack(workflow_pb2.Workflow, given.workflow)
        params = parameters_of(workflow, given.cache_scope)
        return cache_output(await self._calls().lookup_cache(workflow, params))

    @activity.defn(name=RESEARCH)
    async def research(self, given: StepInput) -> str:
        """SearchSources (packed reply)."""
        workflow = unpack(workflow_pb2.Workflow, given.workflow)
        async with _heartbeating(lambda: None):
            try:
                reply = await self._calls().research(
                    workflow, parameters_of(workflow, given.cache_scope)
                )
            except PonderError as exc:
                raise _application_error(exc) from None
        return _checked(pack(reply), "research")

    @activity.defn(name=RANK)
    async def rank(self, given: StepInput) -> RankOutput:
        """RankDocuments (packed documents)."""
        workflow = unpack(workflow_pb2.Workflow, given.workflow)
        documents = [unpack(document_pb2.Document, doc) for doc in given.documents]
        ranked = await self._calls().rank(
            workflow, parameters_of(workflow, given.cache_scope), documents
        )
        return RankOutput([pack(doc) for doc in ranked.documents], ranked.model, ranked.unavailable)

    @activity.defn(name=REFLECT)
    async def reflect(self, given: StepInput) -> str:
        """StreamReflect from the last checkpoint; progress goes to the event log and the
        heartbeat (iteration, scores, message, the text streamed so far)."""
        workflow = unpack(workflow_pb2.Workflow, given.workflow)
        documents = [unpack(document_pb2.Document, doc) for doc in given.documents]
        step = unpack(workflow_pb2.WorkflowStep, given.step)
        for index, known in enumerate(workflow.steps):  # the workflow's own copy of the step
            if known.name == step.name and known.state == workflow_pb2.STEP_STATE_RUNNING:
                step = workflow.steps[index]
        key = _reflect_key(workflow.name)
        saved = await self._checkpoints.get(key)
        done = reflection_pb2.StreamReflectRequest.FromString(saved) if saved else None
        finished = list(done.completed_steps) if done is not None else []
        text: list[str] = []

        async def on_stream(event: reflection_pb2.StreamReflectResponse) -> None:
            which = event.WhichOneof("event")
            if which == "text_delta":
                text.append(event.text_delta)
            elif which == "step_finished":
                text.clear()
                finished.append(event.step_finished)
                kept = reflection_pb2.StreamReflectRequest(completed_steps=finished)
                await self._checkpoints.put(key, kept.SerializeToString())

        def details() -> dict[str, Any]:
            return {
                "iteration": step.iteration,
                "scores": list(step.iteration_scores),
                "message": step.message,
                "text": "".join(text)[-HEARTBEAT_TEXT_CHARS:],
            }

        sink = self._sink(given.watched)

        async def progress(w: workflow_pb2.Workflow, s: workflow_pb2.WorkflowStep) -> None:
            await sink.event(w, workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_UPDATED, s)

        calls = self._calls(progress, resume=tuple(finished), on_stream=on_stream)
        async with _heartbeating(details):
            try:
                reply = await calls.reflect(
                    workflow, parameters_of(workflow, given.cache_scope), documents, step
                )
            except PonderError as exc:
                raise _application_error(exc) from None
        return _checked(pack(reply), "reflection")

    @activity.defn(name=STORE_CACHE)
    async def store_cache(self, given: StepInput) -> str:
        """StoreCache; "" or why not."""
        workflow = unpack(workflow_pb2.Workflow, given.workflow)
        return await self._calls().store_cache(workflow, parameters_of(workflow, given.cache_scope))

    @activity.defn(name=WAIT_FOR)
    async def wait_for(self, name: str) -> None:
        """Return once the workflow `name` has ended (or has no record), heartbeating."""
        async with _heartbeating(lambda: None):
            while True:
                workflow = await self._store.get(name)
                if workflow is None or workflow.state in FINAL_STATES:
                    return
                await asyncio.sleep(WAIT_POLL_SECONDS)
