"""The pipeline as a Temporal workflow: one Temporal workflow per Ponder workflow (same id),
each call to another service an activity, each record and event a local activity.

This module is re-imported by Temporal's workflow sandbox: nothing here does I/O or reads the
clock; the Ponder modules are passed through. Protobuf messages cross the boundary as base64
strings (Temporal's JSON payloads), and every payload stays far below Temporal's 2 MB limit:
the worker refuses a larger result as a non-retryable error (see temporal_activities.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow as tw
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelled
from temporalio.exceptions import TimeoutError as TemporalTimeout


with tw.unsafe.imports_passed_through():
    from google.protobuf import timestamp_pb2
    from google.protobuf.message import Message
    from google.rpc import status_pb2

    from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
    from ponder.research.v1 import research_service_pb2 as research_pb2
    from ponder.type.v1 import document_pb2
    from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
    from ponder_gateway.parameters import RunParameters
    from ponder_gateway.workflows.pipeline import CacheLookup, Pipeline, Ranked, cancelled
    from ponder_gateway.workflows.recorder import Recorder
    from ponder_gateway.workflows.relayed import relayed_error
    from ponder_gateway.workflows.resource import parameters_of
    from ponder_runtime import DeadlineExceededError, PonderError


WORKFLOW = "ponder.workflow"
RECORD = "ponder.record"
LOOKUP_CACHE = "ponder.lookup_cache"
RESEARCH = "ponder.research"
RANK = "ponder.rank"
REFLECT = "ponder.reflect"
STORE_CACHE = "ponder.store_cache"
WAIT_FOR = "ponder.wait_for"
# Most time an enqueued workflow waits for the identical one ahead of it.
MAX_WAIT = timedelta(hours=6)

M = TypeVar("M", bound=Message)


def pack(message: Message) -> str:
    """A message as a payload-friendly string."""
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def unpack(cls: type[M], text: str) -> M:
    """The message `pack` made."""
    return cls.FromString(base64.b64decode(text))


@dataclass
class StepTimeouts:
    """Seconds each kind of activity may run (the gateway's per-step timeouts)."""

    research: float = 30.0
    rank: float = 10.0
    reflection: float = 300.0
    heartbeat: float = 10.0


@dataclass
class StartInput:
    """What a Temporal workflow starts from: the PENDING Ponder workflow."""

    workflow: str
    watched: bool
    timeouts: StepTimeouts = field(default_factory=StepTimeouts)
    cache_scope: str = "global"  # RunParameters.cache_scope (not in the Workflow resource)
    after: str = ""  # enqueued: the workflow to wait for first (multitask_strategy ENQUEUE)
    # The cache lookup the gateway made before it started the workflow (a miss, or the
    # embedding service unavailable): its cache_lookup step, not asked again. None: ask.
    looked_up: CacheOutput | None = None


@dataclass
class RecordInput:
    """One event to append and/or record to save (a local activity)."""

    workflow: str
    watched: bool
    event_type: int = 0
    step: str = ""
    save: bool = False


@dataclass
class StepInput:
    """An activity's input: the workflow so far, and the documents and step it works on."""

    workflow: str
    watched: bool = False
    documents: list[str] = field(default_factory=list)
    step: str = ""
    cache_scope: str = "global"


@dataclass
class CacheOutput:
    """The cache's answer (a packed Workflow, or empty), with what it decided and why (a
    packed CacheInfo and the step's explanation)."""

    workflow: str = ""
    similarity: float = 0.0
    unavailable: str = ""
    info: str = ""
    explanation: str = ""


def cache_output(found: CacheLookup) -> CacheOutput:
    """A lookup as a payload."""
    return CacheOutput(
        pack(found.workflow) if found.workflow is not None else "",
        found.similarity,
        found.unavailable,
        pack(found.info) if found.info is not None else "",
        found.explanation,
    )


def cache_lookup(found: CacheOutput) -> CacheLookup:
    """The lookup `cache_output` made a payload of."""
    if found.unavailable:
        return CacheLookup(unavailable=found.unavailable)
    return CacheLookup(
        unpack(workflow_pb2.Workflow, found.workflow) if found.workflow else None,
        found.similarity,
        info=unpack(workflow_pb2.CacheInfo, found.info) if found.info else None,
        explanation=found.explanation,
    )


@dataclass
class RankOutput:
    """The ranked documents (packed)."""

    documents: list[str] = field(default_factory=list)
    model: str = ""
    unavailable: str = ""


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(tw.now())
    return stamp


# How long an activity may keep being retried after a worker crash (heartbeat or start-to-
# close timeout), as a multiple of its own timeout. Errors it raises are retried a few times
# only (temporal_activities.ERROR_ATTEMPTS), or not at all when retrying cannot help.
RETRY_WINDOW = 6
# An activity's start-to-close timeout is its call's timeout plus this: the call's own
# deadline fires first and is reported as the call's error.
MARGIN_SECONDS = 5.0

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,  # bounded by the schedule-to-close timeout instead
)


def _run_limit(seconds: float) -> timedelta:
    """Start-to-close timeout of one attempt of an activity whose call may take `seconds`."""
    return timedelta(seconds=seconds + MARGIN_SECONDS)


def _retry_limit(seconds: float) -> timedelta:
    """Schedule-to-close timeout: all attempts together."""
    return _run_limit(seconds) * RETRY_WINDOW


def _failure(exc: ActivityError, step: str) -> PonderError:
    """The PonderError an activity's failure stands for; an activity cancelled with its
    workflow cancels the pipeline (CancelledError)."""
    cause = exc.cause
    if isinstance(cause, TemporalCancelled):
        raise asyncio.CancelledError(str(cause)) from exc
    if isinstance(cause, ApplicationError) and cause.details:
        return relayed_error(unpack(status_pb2.Status, str(cause.details[0])))
    if isinstance(cause, TemporalTimeout):
        return DeadlineExceededError(f"{step} timed out", metadata={"step": step})
    return PonderError(f"{step} failed: {cause or exc}", metadata={"step": step})


class TemporalSink:
    """Records and events through a local activity on the worker (the same StoreSink)."""

    def __init__(self, watched: bool) -> None:
        self._watched = watched

    async def _record(self, given: RecordInput) -> None:
        await tw.execute_local_activity(
            RECORD,
            given,
            retry_policy=_RETRY,
            start_to_close_timeout=_run_limit(25),
            schedule_to_close_timeout=_retry_limit(25),
        )

    async def event(
        self,
        workflow: workflow_pb2.Workflow,
        event_type: workflow_pb2.WorkflowEventType,
        step: workflow_pb2.WorkflowStep | None = None,
    ) -> None:
        """Append an event (watched workflows only)."""
        if not self._watched:
            return
        packed_step = pack(step) if step is not None else ""
        await self._record(RecordInput(pack(workflow), True, int(event_type), packed_step))

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Save the record."""
        await self._record(RecordInput(pack(workflow), self._watched, save=True))


class TemporalActivities:
    """The pipeline's Activities as Temporal activities (run by any worker)."""

    def __init__(self, start: StartInput) -> None:
        self._watched = start.watched
        self._timeouts = start.timeouts
        self._cache_scope = start.cache_scope
        self._looked_up = start.looked_up

    def _input(
        self,
        workflow: workflow_pb2.Workflow,
        documents: list[document_pb2.Document] | None = None,
        step: workflow_pb2.WorkflowStep | None = None,
    ) -> StepInput:
        return StepInput(
            pack(workflow),
            self._watched,
            [pack(doc) for doc in documents or []],
            pack(step) if step is not None else "",
            self._cache_scope,
        )

    async def lookup_cache(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> CacheLookup:
        """The semantic cache (an unavailable embedding service is a result); the gateway's
        lookup when it made one before it started the workflow (no activity then)."""
        if self._looked_up is not None:
            return cache_lookup(self._looked_up)
        try:
            found = await tw.execute_activity(
                LOOKUP_CACHE,
                self._input(workflow),
                result_type=CacheOutput,
                start_to_close_timeout=_run_limit(self._timeouts.rank),
                schedule_to_close_timeout=_retry_limit(self._timeouts.rank),
                retry_policy=_RETRY,
            )
        except ActivityError as exc:
            return CacheLookup(unavailable=str(_failure(exc, "cache_lookup")))
        return cache_lookup(found)

    async def research(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> research_pb2.SearchSourcesResponse:
        """SearchSources, retried on outages."""
        try:
            packed: str = await tw.execute_activity(
                RESEARCH,
                self._input(workflow),
                result_type=str,
                start_to_close_timeout=_run_limit(self._timeouts.research),
                schedule_to_close_timeout=_retry_limit(self._timeouts.research),
                heartbeat_timeout=timedelta(seconds=self._timeouts.heartbeat),
                retry_policy=_RETRY,
            )
        except ActivityError as exc:
            raise _failure(exc, "research") from None
        return unpack(research_pb2.SearchSourcesResponse, packed)

    async def rank(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
    ) -> Ranked:
        """RankDocuments (an unavailable embedding service is a result)."""
        try:
            ranked = await tw.execute_activity(
                RANK,
                self._input(workflow, documents),
                result_type=RankOutput,
                start_to_close_timeout=_run_limit(self._timeouts.rank),
                schedule_to_close_timeout=_retry_limit(self._timeouts.rank),
                retry_policy=_RETRY,
            )
        except ActivityError as exc:
            return Ranked(unavailable=_failure(exc, "rank").code.name)
        kept = [unpack(document_pb2.Document, doc) for doc in ranked.documents]
        return Ranked(kept, ranked.model, ranked.unavailable)

    async def reflect(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
        step: workflow_pb2.WorkflowStep,
    ) -> reflection_pb2.ReflectResponse:
        """StreamReflect; the worker heartbeats and records its progress, and a retry goes on
        from the last finished model call."""
        try:
            packed: str = await tw.execute_activity(
                REFLECT,
                self._input(workflow, documents, step),
                result_type=str,
                start_to_close_timeout=_run_limit(self._timeouts.reflection),
                schedule_to_close_timeout=_retry_limit(self._timeouts.reflection),
                heartbeat_timeout=timedelta(seconds=self._timeouts.heartbeat),
                retry_policy=_RETRY,
            )
        except ActivityError as exc:
            raise _failure(exc, "reflection") from None
        return unpack(reflection_pb2.ReflectResponse, packed)

    async def store_cache(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> str:
        """StoreCache; "" or why not."""
        try:
            unavailable: str = await tw.execute_activity(
                STORE_CACHE,
                self._input(workflow),
                result_type=str,
                start_to_close_timeout=_run_limit(self._timeouts.rank),
                schedule_to_close_timeout=_retry_limit(self._timeouts.rank),
                retry_policy=_RETRY,
            )
        except ActivityError as exc:
            return str(_failure(exc, "cache_store"))
        return unavailable


@tw.defn(name=WORKFLOW)
class PonderWorkflow:
    """One Ponder workflow, run by pipeline.py with Temporal activities."""

    @tw.run
    async def run(self, start: StartInput) -> str:
        """The workflow's final record (packed); FAILED records are results too."""
        record = unpack(workflow_pb2.Workflow, start.workflow)
        recorder = Recorder(TemporalSink(start.watched), _now)
        if start.after and not await self._waited(start, record, recorder):
            return pack(record)  # cancelled while it waited its turn
        pipeline = Pipeline(TemporalActivities(start), recorder)
        with contextlib.suppress(PonderError):  # recorded FAILED, with the reason
            await pipeline.run(record, parameters_of(record, start.cache_scope))
        return pack(record)

    async def _waited(
        self, start: StartInput, record: workflow_pb2.Workflow, recorder: Recorder
    ) -> bool:
        """Wait for the workflow ahead (`start.after`) to end: True to go on, False when
        this one was cancelled meanwhile (then recorded CANCELLED)."""
        try:
            await tw.execute_activity(
                WAIT_FOR,
                start.after,
                start_to_close_timeout=MAX_WAIT,
                heartbeat_timeout=timedelta(seconds=start.timeouts.heartbeat),
                retry_policy=_RETRY,
            )
        except asyncio.CancelledError:
            cancelled(record)
            await asyncio.shield(recorder.finished(record))
            return False
        except ActivityError:
            pass  # waited as long as it could: run now
        return True
