"""The local engine: each workflow runs as an asyncio task in this gateway; records in SQLite
or Redis, events in the log beside them. A workflow dies with its process (recover() marks
what a stopped process left behind FAILED)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from opentelemetry.trace import Tracer

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.cache import WorkflowCache
from ponder_gateway.filters import Filter
from ponder_gateway.parameters import RunParameters
from ponder_gateway.record_plan import Page
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import WorkflowStore
from ponder_gateway.upstream import Upstreams
from ponder_gateway.webhooks.notifier import Notifier
from ponder_gateway.workflows.activities import GrpcActivities, look_up, recall
from ponder_gateway.workflows.admission import Admission
from ponder_gateway.workflows.deletion import delete_finished, still_running
from ponder_gateway.workflows.engine import (
    Admit,
    Answered,
    OnDone,
    admitted,
    create_lookup_timeout,
)
from ponder_gateway.workflows.events import FINAL_STATES, Event, EventLog, Wakeups, follow
from ponder_gateway.workflows.pipeline import CacheLookup, Pipeline, cancelled, interrupted
from ponder_gateway.workflows.recorder import Recorder, StoreSink
from ponder_gateway.workflows.resource import new_workflow, record_trace_id, traced
from ponder_runtime import AlreadyExistsError, FailedPreconditionError, NotFoundError, PonderError
from ponder_runtime.channels import call_timeout
from ponder_runtime.protobuf import timestamp


logger = logging.getLogger(__name__)

# How often a watcher re-reads the event log of a workflow running elsewhere (another
# replica), and, as a safety net only, of one running here (its appends wake the watchers).
_POLL_SECONDS = 0.25
_LIVE_POLL_SECONDS = 5.0


class _FinishedLast:
    """A sink that holds the FINISHED event until `flush`: the engine appends it after the
    workflow's span has ended, so a watcher that sees the end finds the whole trace."""

    def __init__(self, sink: StoreSink) -> None:
        self._sink = sink
        self._finished: workflow_pb2.Workflow | None = None

    async def event(
        self,
        workflow: workflow_pb2.Workflow,
        event_type: workflow_pb2.WorkflowEventType,
        step: workflow_pb2.WorkflowStep | None = None,
    ) -> None:
        """Append now, or keep the FINISHED event for `flush`."""
        if event_type == workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED:
            self._finished = workflow_pb2.Workflow()
            self._finished.CopyFrom(workflow)
            return
        await self._sink.event(workflow, event_type, step)

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Save the record."""
        await self._sink.save(workflow)

    async def flush(self) -> None:
        """Append the FINISHED event, if the workflow ended."""
        if self._finished is not None:
            finished, self._finished = self._finished, None
            await self._sink.event(finished, workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED)


class LocalEngine:
    """Runs workflows in this process and serves their records and events."""

    def __init__(
        self,
        upstreams: Upstreams,
        cache: WorkflowCache,
        store: WorkflowStore,
        log: EventLog,
        settings: GatewaySettings,
        *,
        admission: Admission,
        tracer: Tracer | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._up = upstreams
        self._notifier = notifier
        self._cache = cache
        self._store = store
        self._log = log
        self._settings = settings
        self._admission = admission
        self._tracer = tracer  # None: no spans of its own (nothing records them)
        self._wakeups = Wakeups()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, workflow_pb2.Workflow] = {}
        self._shutting_down = False

    # -- running --------------------------------------------------------------------------

    async def run(
        self,
        topic: str,
        params: RunParameters,
        context: grpc.aio.ServicerContext[Any, Any] | None,
        *,
        tenant: str = "",
        workflow_id: str = "",
        looked_up: CacheLookup | None = None,
    ) -> workflow_pb2.Workflow:
        """Run a workflow of `tenant` to its end and return it; PonderError when it fails.
        `looked_up`: its cache lookup, made before (not asked again)."""
        async with self._admission.admitted():
            workflow = new_workflow(topic, params, workflow_id, tenant=tenant)
            return await self._execute(
                workflow, params, context, watched=False, looked_up=looked_up
            )

    async def remembers(self, topic: str, params: RunParameters, tenant: str = "") -> bool:
        """Whether the semantic cache's first level holds the answer (policy USE only)."""
        if params.cache_policy != workflow_pb2.CACHE_POLICY_USE:
            return False
        return await self._cache.remembers(topic, params, tenant)

    async def recalled(
        self, topic: str, params: RunParameters, tenant: str = ""
    ) -> CacheLookup | None:
        """The first level's answer, as the lookup its run takes over (policy USE only)."""
        if params.cache_policy != workflow_pb2.CACHE_POLICY_USE:
            return None
        return await recall(self._cache, topic, params, tenant)

    async def answered(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str = "",
        *,
        tenant: str = "",
        admit: Admit | None = None,
        context: grpc.aio.ServicerContext[Any, Any] | None = None,
    ) -> Answered:
        """A workflow of `tenant` to create, looked up in the cache here, before anything is
        recorded (policy USE; Engine.answered): a hit is answered and recorded with one write
        (its final record: no PENDING record, no events; a watcher gets its end from the
        record), counted in by `admit` against the caller's budgets while it is; a miss (or
        the embedding service unavailable) records nothing and comes back for `create`."""
        if params.cache_policy != workflow_pb2.CACHE_POLICY_USE:
            return Answered()
        workflow = new_workflow(topic, params, workflow_id, tenant=tenant)
        found = await look_up(self._cache, workflow, params, create_lookup_timeout(context))
        if found.timed_out:  # slow, perhaps not down: its run asks again, with its own time
            return Answered()
        if found.workflow is None:
            return Answered(lookup=found)
        await self._check_new(workflow_id)
        with admitted(admit):
            async with self._admission.admitted():
                done = await self._execute(
                    workflow, params, None, watched=False, cached_only=True, looked_up=found
                )
        return Answered(done) if done.state in FINAL_STATES else Answered(lookup=found)

    async def _check_new(self, workflow_id: str) -> None:
        """ALREADY_EXISTS when a workflow of the caller-chosen id runs here or is recorded."""
        name = f"workflows/{workflow_id}"
        if workflow_id and (name in self._tasks or await self._store.get(name)):
            raise AlreadyExistsError(f"{name} already exists", metadata={"name": name})

    async def _execute(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        context: grpc.aio.ServicerContext[Any, Any] | None,
        *,
        watched: bool,
        cached_only: bool = False,
        looked_up: CacheLookup | None = None,
    ) -> workflow_pb2.Workflow:
        """Run the workflow here to its end (`cached_only`: only when the cache answers it;
        else returned not final, nothing recorded), with its cache lookup when one was made
        before (`looked_up`: not asked again)."""
        self._live[workflow.name] = workflow
        # A created hit (cached_only) is recorded by its one write: that write creates it.
        store_sink = StoreSink(
            self._store, self._log, self._wakeups, watched=watched, new=cached_only
        )
        # Only a watched workflow has events, so only its FINISHED event waits for the span.
        sink = _FinishedLast(store_sink) if watched else None
        recorder = Recorder(sink or store_sink, timestamp, self._tracer)
        activities = GrpcActivities(
            self._up,
            self._cache,
            self._settings,
            timeout=lambda seconds: call_timeout(context, seconds),
            progress=recorder.progress,
            looked_up=looked_up,
        )
        pipeline = Pipeline(activities, recorder, on_cancel=self._on_cancel)
        notify = not cached_only  # a created hit: once it is recorded
        # A hit calls no service: it takes no running slot (answered at once, not behind long
        # runs), whether a create looked it up or a run found it in the first level.
        hit = cached_only or (looked_up is not None and looked_up.workflow is not None)
        try:
            async with self._admission.measured(workflow):
                with traced(self._tracer, workflow):
                    async with contextlib.nullcontext() if hit else self._admission.slot():
                        record_trace_id(workflow)  # cache hits too
                        if cached_only:
                            if not await pipeline.answer(workflow, params):
                                return workflow  # a miss after all: not recorded
                            notify = True
                        else:
                            await pipeline.run(workflow, params)
                        # A cache hit's line is DEBUG: the request's access line and the
                        # durable record already say it (one INFO line per cached answer).
                        logger.log(
                            logging.DEBUG if workflow.cache.hit else logging.INFO,
                            "workflow succeeded",
                            extra={
                                "workflow": workflow.name,
                                "sources": len(workflow.result.sources),
                                "seconds": workflow.execution_time.ToNanoseconds() / 1e9,
                                "cache_hit": workflow.cache.hit,
                            },
                        )
                        return workflow
        finally:
            if sink is not None:
                await asyncio.shield(sink.flush())
            self._live.pop(workflow.name, None)
            if self._notifier is not None and notify:
                self._notifier.notify(workflow)  # its completion webhook, in the background

    def _on_cancel(self, workflow: workflow_pb2.Workflow) -> None:
        # Not the caller's doing when the gateway is stopping.
        (interrupted if self._shutting_down else cancelled)(workflow)

    async def create(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str = "",
        *,
        tenant: str = "",
        on_done: OnDone | None = None,
        after: str = "",
        looked_up: CacheLookup | None = None,
    ) -> workflow_pb2.Workflow:
        """Record a PENDING workflow of `tenant` and start it in the background (once the
        workflow `after` has ended, if given); `on_done` runs when it ends. `looked_up`: its
        cache lookup, made before (its cache_lookup step; the cache is not asked again)."""
        await self._check_new(workflow_id)
        self._admission.admit()
        workflow = new_workflow(topic, params, workflow_id, tenant=tenant)
        try:
            await self._store.insert(workflow)  # ALREADY_EXISTS: a create of the id won a race
        except BaseException:
            self._admission.release()
            raise
        task = asyncio.create_task(
            self._background(workflow, params, on_done, after, looked_up), name=workflow.name
        )
        self._tasks[workflow.name] = task
        return workflow

    async def _background(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        on_done: OnDone | None = None,
        after: str = "",
        looked_up: CacheLookup | None = None,
    ) -> None:
        try:
            if after:
                await self._ended(after)
            await self._execute(workflow, params, None, watched=True, looked_up=looked_up)
        except PonderError:
            pass  # recorded as FAILED
        except asyncio.CancelledError:
            if workflow.state not in FINAL_STATES:  # cancelled while it waited its turn
                self._on_cancel(workflow)
                sink = StoreSink(self._store, self._log, self._wakeups, watched=True)
                await asyncio.shield(Recorder(sink, timestamp).finished(workflow))
            raise
        finally:
            self._tasks.pop(workflow.name, None)
            self._admission.release()
            if on_done is not None:
                await asyncio.shield(on_done(workflow))

    async def _ended(self, name: str) -> None:
        """Wait until the workflow `name` (running here or on another replica) has ended."""
        with contextlib.suppress(NotFoundError):
            async for _ in self.watch(name):
                pass

    # -- reading --------------------------------------------------------------------------

    async def get(self, name: str) -> workflow_pb2.Workflow:
        """A workflow by name (its live state while it runs here)."""
        live = self._live.get(name)
        if live is not None:
            copy = workflow_pb2.Workflow()
            copy.CopyFrom(live)
            return copy
        stored = await self._store.get(name)
        if stored is None:
            raise NotFoundError(f"{name} does not exist", metadata={"name": name})
        return stored

    async def list(self, where: Filter, *, limit: int, after: tuple[int, str] | None) -> Page:
        """A page of records, newest first (live ones with their current state)."""
        page = await self._store.list(where, limit=limit, after=after)
        page.workflows = [self._live.get(w.name, w) for w in page.workflows]
        return page

    def watch(self, name: str, after_sequence: int = 0) -> AsyncIterator[Event]:
        """The workflow now (unless resuming), then its events until it ends."""
        return follow(
            self._log,
            self._wakeups,
            name,
            self.get,
            recorded=self._recorded,
            after_sequence=after_sequence,
            poll_seconds=self._poll_seconds,
        )

    async def _recorded(self, name: str) -> workflow_pb2.Workflow | None:
        """The durable record, for watchers; none while the workflow runs here (its FINISHED
        event comes from this process, after its span)."""
        if name in self._tasks:
            return None
        return await self._store.get(name)

    def _poll_seconds(self, name: str) -> float:
        """A workflow running here wakes its watchers itself; others are polled."""
        return _LIVE_POLL_SECONDS if name in self._tasks else _POLL_SECONDS

    # -- control --------------------------------------------------------------------------

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

    async def delete(self, name: str) -> None:
        """Delete a finished workflow's record and events; FAILED_PRECONDITION while it runs."""
        workflow = await self.get(name)
        if name in self._tasks:
            raise still_running(workflow)
        await delete_finished(self._store, self._log, workflow)

    async def start(self, *, stale_after: float = 0.0) -> None:
        """Resolve the workflows a stopped process left unfinished."""
        await self.recover(stale_after=stale_after)

    async def recover(self, *, stale_after: float = 0.0) -> int:
        """At start: workflows a stopped process left unfinished are marked FAILED. With
        records shared by replicas, only those not updated for `stale_after` seconds (longer
        than any workflow can run) count as left behind."""
        count = 0
        cutoff = timestamp().ToNanoseconds() - int(stale_after * 1e9)
        recorder = Recorder(
            StoreSink(self._store, self._log, self._wakeups, watched=True), timestamp
        )
        for workflow in await self._store.unfinished():
            if workflow.update_time.ToNanoseconds() > cutoff:
                continue
            workflow.state = workflow_pb2.WORKFLOW_STATE_FAILED
            workflow.error.code = grpc.StatusCode.ABORTED.value[0]
            workflow.error.message = "the gateway stopped before the workflow finished"
            await recorder.finished(workflow)
            if self._notifier is not None:
                self._notifier.notify(workflow)
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
        if self._notifier is not None:  # deliveries stay due on the records
            await self._notifier.drain()
        await self._log.close()
        await self._store.close()
