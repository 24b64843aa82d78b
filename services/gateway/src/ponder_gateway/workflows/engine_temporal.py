"""The Temporal engine: the gateway is a thin client. Each Ponder workflow is a Temporal
workflow with the same id (so a create is idempotent), run by `python -m
ponder_gateway.worker` processes; any of them may die and the workflow goes on.

Reads come from the records read model (the store and event log the workers write, SQLite
or Redis): Get, List and Watch behave exactly as on the local engine (same filters, page
tokens and event numbers), are consistent at once (Temporal visibility is eventually
consistent and needs search attributes registered), and cost Temporal nothing.

A workflow (created or run synchronously, cache policy USE) is looked up in the cache here
first (this gateway's first level, then the embedding service's LookupCache): a hit is
answered and recorded here (one write, its final record), without a Temporal workflow:
starting one costs Temporal its own durable history (several writes) and a worker round trip,
only for the worker to find the same answer in the cache; a gateway-answered hit has no steps
that could fail or need resuming, so Temporal's durability adds nothing. A miss starts the
Temporal workflow with that lookup in its input, which the worker takes as its cache_lookup
step instead of asking again. The first level here learns the answers the workers keep in
the cache, from the final records of the workflows this gateway follows."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.cache import WorkflowCache
from ponder_gateway.filters import Filter
from ponder_gateway.parameters import RunParameters
from ponder_gateway.record_plan import Page
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import WorkflowStore
from ponder_gateway.upstream import Upstreams
from ponder_gateway.webhooks.notifier import Notifier
from ponder_gateway.webhooks.state import mark_ended
from ponder_gateway.workflows.activities import GrpcActivities, look_up, recall
from ponder_gateway.workflows.admission import Admission
from ponder_gateway.workflows.deletion import delete_finished
from ponder_gateway.workflows.engine import (
    Admit,
    Answered,
    OnDone,
    admitted,
    create_lookup_timeout,
)
from ponder_gateway.workflows.events import FINAL_STATES, Event, EventLog, Wakeups, follow
from ponder_gateway.workflows.pipeline import CacheLookup, Pipeline
from ponder_gateway.workflows.recorder import Recorder, StoreSink
from ponder_gateway.workflows.relayed import relayed_error
from ponder_gateway.workflows.resource import new_workflow, record_trace_id
from ponder_gateway.workflows.temporal_workflow import (
    WORKFLOW,
    StartInput,
    StepTimeouts,
    cache_output,
    pack,
    unpack,
)
from ponder_runtime import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    UnavailableError,
)
from ponder_runtime.channels import call_timeout
from ponder_runtime.protobuf import timestamp


def step_timeouts(settings: GatewaySettings) -> StepTimeouts:
    """The activities' timeouts from the gateway's per-step timeouts."""
    return StepTimeouts(
        research=settings.research_timeout_seconds,
        rank=settings.rank_timeout_seconds,
        reflection=settings.reflection_timeout_seconds,
        heartbeat=settings.temporal_heartbeat_timeout_seconds,
    )


class TemporalEngine:
    """Starts, cancels and follows workflows that Temporal workers run."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Client]],
        store: WorkflowStore,
        log: EventLog,
        settings: GatewaySettings,
        *,
        admission: Admission,
        notifier: Notifier | None = None,
        answers: tuple[Upstreams, WorkflowCache] | None = None,
    ) -> None:
        self._connect = connect
        # The services and cache this gateway looks workflows up with (None: the workers do).
        self._answers = answers
        self._notifier = notifier
        self._connected: Client | None = None
        self._store = store
        self._log = log
        self._settings = settings
        self._admission = admission
        self._wakeups = Wakeups()
        # Tasks that release a created workflow's budget when it ends.
        self._followers: set[asyncio.Task[None]] = set()

    def _start(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        watched: bool,
        after: str = "",
        looked_up: CacheLookup | None = None,
    ) -> StartInput:
        # The tenant travels in the packed record; the cache scope beside it.
        return StartInput(
            pack(workflow),
            watched,
            step_timeouts(self._settings),
            params.cache_scope,
            after,
            cache_output(looked_up) if looked_up is not None else None,
        )

    def _answering(self, params: RunParameters) -> tuple[Upstreams, WorkflowCache] | None:
        """The services and cache this gateway looks the workflow up with, and answers its
        hits with (policy USE); None when the workers look it up."""
        if params.cache_policy != workflow_pb2.CACHE_POLICY_USE:
            return None
        return self._answers

    async def remembers(self, topic: str, params: RunParameters, tenant: str = "") -> bool:
        """Whether this gateway's first-level cache holds the answer now (policy USE; never
        without the services to answer with)."""
        answers = self._answering(params)
        return answers is not None and await answers[1].remembers(topic, params, tenant)

    async def recalled(
        self, topic: str, params: RunParameters, tenant: str = ""
    ) -> CacheLookup | None:
        """This gateway's first-level answer, as the lookup its run takes over (policy USE;
        never without the services to answer with)."""
        answers = self._answering(params)
        return None if answers is None else await recall(answers[1], topic, params, tenant)

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
        """A workflow of `tenant` to create, looked up in the cache by this gateway before
        anything is recorded (policy USE; Engine.answered): a hit is recorded here with one
        write (its final record), no Temporal workflow started, counted in by `admit` against
        the caller's budgets while it is; a miss (or the embedding service unavailable)
        records nothing and comes back for `create`, which hands it to the workers."""
        answers = self._answering(params)
        if answers is None:
            return Answered()
        workflow = new_workflow(topic, params, workflow_id, tenant=tenant)
        record_trace_id(workflow)
        found = await look_up(answers[1], workflow, params, create_lookup_timeout(context))
        if found.timed_out:  # slow, perhaps not down: its run asks again, with its own time
            return Answered()
        if found.workflow is None:
            return Answered(lookup=found)
        await self._check_new(workflow_id)
        with admitted(admit):
            await self._answer(workflow, params, answers, found, new=True)
        return Answered(workflow)

    async def _answer(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        answers: tuple[Upstreams, WorkflowCache],
        found: CacheLookup,
        *,
        new: bool = False,
    ) -> None:
        """Record the workflow the cache answered (`found`, a hit): its final record, the one
        write (an insert for a created one: `new`); then its completion webhook, if it has
        one."""
        up, cache = answers
        async with self._admission.admitted(), self._admission.measured(workflow):
            sink = StoreSink(self._store, self._log, self._wakeups, watched=False, new=new)
            recorder = Recorder(sink, timestamp)
            calls = GrpcActivities(
                up,
                cache,
                self._settings,
                timeout=lambda seconds: seconds,
                progress=recorder.progress,
                looked_up=found,
            )
            await Pipeline(calls, recorder).answer(workflow, params)
        if self._notifier is not None:
            self._notifier.notify(workflow)

    async def _check_new(self, workflow_id: str) -> None:
        """ALREADY_EXISTS when a workflow of the caller-chosen id is recorded."""
        name = f"workflows/{workflow_id}"
        if workflow_id and await self._store.get(name):
            raise AlreadyExistsError(f"{name} already exists", metadata={"name": name})

    async def _learn(self, final: workflow_pb2.Workflow | None, params: RunParameters) -> None:
        """A workflow the workers ran and kept in the cache: this gateway's first level
        answers its exact repeats (as the local engine's does after its own store)."""
        if self._answers is None or final is None or final.cache.hit:
            return
        if final.state != workflow_pb2.WORKFLOW_STATE_SUCCEEDED:
            return
        for step in final.steps:
            if step.name == "cache_store" and step.state == workflow_pb2.STEP_STATE_SUCCEEDED:
                stored_at = step.start_time.ToNanoseconds() / 1e9
                await self._answers[1].stored_elsewhere(final, params, stored_at)

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
        """Look the workflow of `tenant` up in the cache here (policy USE), unless it was
        (`looked_up`): a hit is recorded with one write and no Temporal workflow; else start
        it (with that lookup, not made again) and wait for its end; the caller's deadline is
        the workflow's timeout, and a caller that goes away cancels it."""
        workflow = new_workflow(topic, params, workflow_id, tenant=tenant)
        record_trace_id(workflow)  # the request's trace, carried on by the workers
        answers = self._answering(params)
        found = looked_up
        if answers is not None:
            if found is None:
                found = await look_up(
                    answers[1], workflow, params, functools.partial(call_timeout, context)
                )
            if found.workflow is not None:
                await self._answer(workflow, params, answers, found)
                return workflow
        remaining = context.time_remaining() if context is not None else None
        async with self._admission.admitted(), self._admission.measured(workflow):
            handle = await self._client.start_workflow(
                WORKFLOW,
                self._start(workflow, params, watched=False, looked_up=found),
                id=workflow.id,
                task_queue=self._settings.temporal_task_queue,
                result_type=str,
                execution_timeout=timedelta(seconds=remaining) if remaining else None,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            try:
                final = await self._result(handle, workflow.name)
            except asyncio.CancelledError:
                await asyncio.shield(handle.cancel())
                raise
            workflow.CopyFrom(final)
        await self._learn(workflow, params)
        if self._notifier is not None:
            self._notifier.notify(workflow)
        if workflow.state != workflow_pb2.WORKFLOW_STATE_SUCCEEDED:
            raise relayed_error(workflow.error)
        return workflow

    async def _result(
        self, handle: WorkflowHandle[object, str], name: str
    ) -> workflow_pb2.Workflow:
        """The final record, whether the Temporal workflow returned it or was cancelled or
        timed out (then the record says so, or says FAILED here)."""
        try:
            return unpack(workflow_pb2.Workflow, await handle.result())
        except WorkflowFailureError as exc:
            stored = await self._store.get(name)
            if stored is not None and stored.state in FINAL_STATES:
                return stored
            failed = stored or workflow_pb2.Workflow(name=name)
            failed.state = workflow_pb2.WORKFLOW_STATE_FAILED
            failed.error.code = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
            failed.error.message = f"the workflow did not finish: {exc.cause or exc}"
            if stored is not None:  # timed out: it cannot record its own end
                failed.update_time.GetCurrentTime()
                if not failed.HasField("end_time"):
                    failed.end_time.CopyFrom(failed.update_time)
                mark_ended(failed, failed.update_time)
                await self._store.save(failed)
            return failed

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
        """Record a PENDING workflow of `tenant` and start its Temporal workflow (same id),
        which first waits for the workflow `after` to end, if given; `on_done` runs when it
        ends (None when this gateway stops following it first). `looked_up`: its cache
        lookup, made here before (the workers take it as their cache_lookup step)."""
        name = f"workflows/{workflow_id}"
        await self._check_new(workflow_id)
        workflow = new_workflow(topic, params, workflow_id, tenant=tenant)
        record_trace_id(workflow)  # the request's trace, carried on by the workers
        await self._store.insert(workflow)  # ALREADY_EXISTS: a create of the id won a race
        try:
            handle = await self._client.start_workflow(
                WORKFLOW,
                self._start(workflow, params, watched=True, after=after, looked_up=looked_up),
                id=workflow.id,
                task_queue=self._settings.temporal_task_queue,
                result_type=str,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            raise AlreadyExistsError(f"{name} already exists", metadata={"name": name}) from None
        notify = self._notifier is not None and workflow.HasField("notification")
        if on_done is not None or notify or self._answers is not None:
            task = asyncio.create_task(
                self._when_done(handle, on_done, workflow.name, params), name=workflow.name
            )
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)
        return workflow

    async def _when_done(
        self,
        handle: WorkflowHandle[object, str],
        on_done: OnDone | None,
        name: str,
        params: RunParameters,
    ) -> None:
        """Once the Temporal workflow has ended (however it ended): start its completion
        webhook (if it has one), learn its answer (`_learn`), and call `on_done` with the
        final record (None when this gateway stops first)."""
        final: workflow_pb2.Workflow | None = None
        try:
            try:
                final = await self._result(handle, name)
            except Exception:
                final = await self._store.get(name)
            with contextlib.suppress(Exception):  # the first level is an optimization
                await self._learn(final, params)
            if self._notifier is not None:
                with contextlib.suppress(Exception):  # the sweep takes it over
                    stored = await self._store.get(name)
                    if stored is not None:
                        self._notifier.notify(stored)
        finally:
            if on_done is not None:
                await asyncio.shield(on_done(final))

    async def get(self, name: str) -> workflow_pb2.Workflow:
        """The record, or the workflow in its latest event when that is newer (a finished
        record is the last word: its webhook's delivery state changes after the last event)."""
        stored = await self._store.get(name)
        if stored is not None and stored.state in FINAL_STATES:
            return stored
        latest = await self._log.last(name)
        if latest is not None and (
            stored is None
            or latest.workflow.update_time.ToNanoseconds() >= stored.update_time.ToNanoseconds()
        ):
            return latest.workflow
        if stored is None:
            raise NotFoundError(f"{name} does not exist", metadata={"name": name})
        return stored

    async def list(self, where: Filter, *, limit: int, after: tuple[int, str] | None) -> Page:
        """A page of records, newest first (from the records' indexes)."""
        return await self._store.list(where, limit=limit, after=after)

    async def delete(self, name: str) -> None:
        """Delete a finished workflow's record and events; FAILED_PRECONDITION while it runs."""
        await delete_finished(self._store, self._log, await self.get(name))

    def watch(self, name: str, after_sequence: int = 0) -> AsyncIterator[Event]:
        """Follow the event log the workers append to."""
        return follow(
            self._log,
            self._wakeups,
            name,
            self.get,
            recorded=self._store.get,
            after_sequence=after_sequence,
        )

    async def cancel(self, name: str) -> workflow_pb2.Workflow:
        """Cancel the Temporal workflow (and its in-flight call); wait for its record."""
        workflow = await self.get(name)
        if workflow.state in FINAL_STATES:
            raise FailedPreconditionError(
                f"{name} is {workflow_pb2.WorkflowState.Name(workflow.state)}: only a pending "
                "or running workflow can be cancelled",
                metadata={"name": name},
            )
        handle: WorkflowHandle[object, str] = self._client.get_workflow_handle(
            workflow.id, result_type=str
        )
        await handle.cancel()
        await self._result(handle, name)
        return await self.get(name)

    @property
    def _client(self) -> Client:
        if self._connected is None:
            raise UnavailableError("the gateway is not connected to Temporal yet")
        return self._connected

    async def start(self, *, stale_after: float = 0.0) -> None:
        """Connect to Temporal (nothing to resolve: Temporal resumes unfinished workflows on
        the workers)."""
        self._connected = await self._connect()

    async def drain(self, grace: float) -> None:
        """Close the reads; running workflows go on on the workers."""
        for task in list(self._followers):
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)
        if self._notifier is not None:  # deliveries stay due on the records
            await self._notifier.drain()
        await self._log.close()
        await self._store.close()
