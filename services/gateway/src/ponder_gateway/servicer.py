"""gRPC servicer of ponder.workflow.v1.WorkflowService."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple, TypeVar, cast

import grpc
from google.protobuf.message import Message
from opentelemetry import trace

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.budgets import DailyBudgets, MemoryLedger, WorkflowBudgets
from ponder_gateway.cache import namespace, uses_library
from ponder_gateway.cache_scope import GLOBAL, CacheScopeMode, cache_scope
from ponder_gateway.coalescing import Coalescer, MemoryRunningIndex, RunningIndex, identity
from ponder_gateway.filters import parse as parse_filter
from ponder_gateway.listing import read_token, token_at
from ponder_gateway.ownership import owned, replay_key, scoped
from ponder_gateway.parameters import Notification, ParameterShapes, RunParameters
from ponder_gateway.principals import Principal, current
from ponder_gateway.replay import REPLAY_AGE_KEY, ReplayMemo
from ponder_gateway.webhooks.destinations import DestinationPolicy
from ponder_gateway.webhooks.secrets import WebhookSecrets
from ponder_gateway.webhooks.targets import WebhookTargets
from ponder_gateway.workflows.engine import Answered, Engine
from ponder_gateway.workflows.pipeline import CacheLookup
from ponder_gateway.workflows.relayed import relayed_error
from ponder_gateway.workflows.resource import usage_attributes
from ponder_runtime import AlreadyExistsError, RequestValidator
from ponder_runtime.ids import RandomIds


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_WORKFLOW_ID = re.compile(r"^[a-z][a-z0-9-]{2,62}$")
_NAME = re.compile(r"^workflows/[a-z0-9][a-z0-9-]{2,62}$")


_Reply = TypeVar(
    "_Reply",
    workflow_pb2.RunReflectionWorkflowResponse,
    workflow_pb2.RunResearchWorkflowResponse,
    workflow_pb2.RunWorkflowResponse,
)


class _Spec(NamedTuple):
    """What a synchronous run is asked for, whichever request carried it."""

    kind: workflow_pb2.WorkflowKind
    topic: str
    parameters: workflow_pb2.WorkflowParameters
    notification: workflow_pb2.NotificationTarget | None = None

    @classmethod
    def of(
        cls,
        kind: workflow_pb2.WorkflowKind,
        carrier: workflow_pb2.RunReflectionWorkflowRequest
        | workflow_pb2.RunResearchWorkflowRequest
        | workflow_pb2.Workflow,
    ) -> _Spec:
        """The topic, parameters and notification target `carrier` holds."""
        target = carrier.notification if carrier.HasField("notification") else None
        return cls(kind, carrier.topic, carrier.parameters, target)


class _Lead(NamedTuple):
    """How a synchronous run goes on after coalescing (WorkflowServicer._lead)."""

    twin_key: str  # the identity it holds while it runs ("" for none)
    workflow_id: str
    joined: workflow_pb2.Workflow | None = None  # the finished twin that answers it
    recalled: CacheLookup | None = None  # its first-level hit, for its run to take over


def _answer(reply: type[_Reply], workflow: workflow_pb2.Workflow) -> _Reply:
    """A Run*Workflow reply carrying `workflow` (copied in: quicker than the constructor's
    keyword, which goes through Python)."""
    message = reply()
    message.workflow.CopyFrom(workflow)
    return message


def _check_name(name: str) -> None:
    check = RequestValidator()
    if not _NAME.match(name):
        check.add("name", "must be workflows/{workflow}")
    check.check()


class WorkflowServicer(workflow_grpc.WorkflowServiceServicer):
    """Validates workflow requests and hands them to the workflow engine."""

    def __init__(
        self,
        engine: Engine,
        replay: ReplayMemo[Message] | None = None,
        budgets: WorkflowBudgets | None = None,
        *,
        scope_mode: CacheScopeMode = "global",
        daily: DailyBudgets | None = None,
        running: RunningIndex | None = None,
        webhooks: WebhookTargets | None = None,
    ) -> None:
        self._engine = engine
        self._webhooks = webhooks or WebhookTargets(
            DestinationPolicy(hosts=(), networks=()), WebhookSecrets({})
        )
        self._replay: ReplayMemo[Message] = replay or ReplayMemo(seconds=0, max_entries=0)
        self._budgets = budgets or WorkflowBudgets(per_tenant=0, per_key=0)
        self._scope_mode: CacheScopeMode = scope_mode
        self._daily = daily or DailyBudgets(MemoryLedger())
        self._twins = Coalescer(running or MemoryRunningIndex(), engine.get)
        self._ids = RandomIds()  # workflow ids
        self._shapes = ParameterShapes()

    async def _answered(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str,
        principal: Principal,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Answered:
        """The workflow to create, looked up in the cache before anything is recorded: on a
        hit answered and recorded at once (one store write; it claims no coalescing
        identity: there is no execution to share), charged to the caller's budgets like any
        other; else the lookup its run takes over (Engine.answered)."""
        answered = await self._engine.answered(
            topic,
            params,
            workflow_id,
            tenant=principal.tenant,
            admit=functools.partial(self._budgets.acquire, principal),
            context=context,
        )
        if answered.workflow is not None:
            await self._daily.charge(principal, answered.workflow)
        return answered

    async def _twin(
        self, key: str, name: str, params: RunParameters
    ) -> workflow_pb2.Workflow | None:
        """None when the request leads (`name` claims `key`); else the identical workflow
        still running, unless the strategy is REJECT (ALREADY_EXISTS naming it)."""
        running = await self._twins.lead_or_join(key, name)
        if (
            running is not None
            and params.multitask_strategy == workflow_pb2.MULTITASK_STRATEGY_REJECT
        ):
            raise AlreadyExistsError(
                f"an identical workflow is still running: {running.name} "
                "(multitask_strategy REJECT)",
                metadata={"running": running.name},
            )
        return running

    async def _run(
        self,
        request: Message,
        answer: Callable[[workflow_pb2.Workflow], Message],
        spec: _Spec,
        context: grpc.aio.ServicerContext[Any, Any],
        prefix: str = "",
    ) -> Message:
        """Run to completion, or replay the answer to the same request (replay.py) from the
        same tenant and cache scope."""
        scope = cache_scope(self._scope_mode, context)
        key, replayed = await self._replayed(request, scope, context)
        if replayed is not None:
            return replayed
        params = self._shapes.resolve(spec.kind, spec.topic, spec.parameters, prefix=prefix)
        if params.cache_scope != scope:
            params = dataclasses.replace(params, cache_scope=scope)
        params = await self._notified(params, spec.notification, prefix)
        principal = current()  # access: per tenant and per key
        topic = spec.topic.strip()
        await self._daily.check(principal)  # QuotaExceededError when the key's day is spent
        twin_key, workflow_id, joined, recalled = await self._lead(topic, params, principal)
        if joined is not None:
            return answer(joined)  # one execution for both
        spend = self._budgets.acquire(principal)
        try:
            workflow = await self._engine.run(
                topic,
                params,
                context,
                tenant=principal.tenant,
                workflow_id=workflow_id,
                looked_up=recalled,
            )
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attributes(usage_attributes(workflow))
            await self._daily.charge(principal, workflow)
        finally:
            spend()
            if twin_key:
                await asyncio.shield(self._twins.release(twin_key, f"workflows/{workflow_id}"))
        reply = answer(workflow)
        if key is not None:
            self._remember(key, params, workflow.topic, reply)
        return reply

    async def _lead(self, topic: str, params: RunParameters, principal: Principal) -> _Lead:
        """The identity this request holds while it runs ("" for none), its workflow id, or
        the finished twin it joined instead.

        A request this process can answer from the cache's first level at once is a workflow
        of its own (recorded), its lookup made here for its run to take over: there is no
        execution to coalesce with. Every other one claims
        its identity (coalescing.py); one that finds a twin running waits for it, then is
        answered by it (JOIN) unless the twin was itself answered from the cache (then this
        request is too, as a workflow of its own), or runs after it (ENQUEUE)."""
        workflow_id = self._ids.uuid4()
        recalled = await self._engine.recalled(topic, params, principal.tenant)
        if recalled is not None:
            return _Lead("", workflow_id, recalled=recalled)
        twin_key = identity(principal.tenant, topic, params)
        while True:
            running = await self._twin(twin_key, f"workflows/{workflow_id}", params)
            if running is None:
                return _Lead(twin_key, workflow_id)
            final = await self._twins.ended(running.name)
            workflow_id = self._ids.uuid4()
            if params.multitask_strategy == workflow_pb2.MULTITASK_STRATEGY_ENQUEUE:
                continue  # its turn now (perhaps answered from the cache)
            if final.state != workflow_pb2.WORKFLOW_STATE_SUCCEEDED:
                raise relayed_error(final.error)
            if final.cache.hit and params.cache_policy == workflow_pb2.CACHE_POLICY_USE:
                return _Lead("", workflow_id)  # no execution to share: a cache hit of its own
            return _Lead("", workflow_id, final)

    async def _replayed(
        self, request: Message, scope: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[tuple[str, bytes] | None, Message | None]:
        """The request's replay-memo key (None when replays are off) and the reply kept for
        it, if any (its age sent as header metadata)."""
        if not self._replay.enabled:
            return None, None
        method, body = replay_key(self._replay.key(request), current())  # access: per tenant
        key = (method if scope == GLOBAL else f"{method}@{scope}", body)
        replayed = await self._replay.get(key)
        if replayed is None:
            return key, None
        reply, age = replayed
        await context.send_initial_metadata(((REPLAY_AGE_KEY, f"{age:.3f}"),))
        return key, reply

    def _remember(
        self, key: tuple[str, bytes], params: RunParameters, topic: str, reply: Message
    ) -> None:
        """Keep the reply for replays (cache policy USE); a REFRESH drops those of its topic."""
        question = f"{namespace(params)}\n{topic}"
        if params.cache_policy == workflow_pb2.CACHE_POLICY_USE:
            # An answer from the library holds only while its version does: replayed while
            # the cache's first level (keyed by that version) still answers the question.
            tenant = current().tenant  # access: per tenant
            still = (
                functools.partial(self._engine.remembers, topic, params, tenant)
                if uses_library(params)
                else None
            )
            self._replay.put(key, reply, question, still)
        elif params.cache_policy == workflow_pb2.CACHE_POLICY_REFRESH:
            self._replay.forget(question)

    async def _notified(
        self,
        params: RunParameters,
        target: workflow_pb2.NotificationTarget | None,
        prefix: str,
    ) -> RunParameters:
        """The parameters with a checked completion-webhook target (INVALID_ARGUMENT naming
        `<prefix>notification.url` or `.secret_name` when refused)."""
        if target is None:
            return params
        await self._webhooks.check(target, current().tenant, f"{prefix}notification.")
        return dataclasses.replace(
            params, notification=Notification(target.url, target.secret_name)
        )

    async def RunReflectionWorkflow(
        self,
        request: workflow_pb2.RunReflectionWorkflowRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> workflow_pb2.RunReflectionWorkflowResponse:
        """Topic -> library sources -> ranked -> reflection, returned finished."""
        spec = _Spec.of(workflow_pb2.WORKFLOW_KIND_REFLECTION, request)
        reply = await self._run(
            request,
            functools.partial(_answer, workflow_pb2.RunReflectionWorkflowResponse),
            spec,
            context,
        )
        return cast(workflow_pb2.RunReflectionWorkflowResponse, reply)

    async def RunResearchWorkflow(
        self,
        request: workflow_pb2.RunResearchWorkflowRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> workflow_pb2.RunResearchWorkflowResponse:
        """Topic -> sources -> ranked -> cited summary, returned finished."""
        spec = _Spec.of(workflow_pb2.WORKFLOW_KIND_RESEARCH, request)
        reply = await self._run(
            request,
            functools.partial(_answer, workflow_pb2.RunResearchWorkflowResponse),
            spec,
            context,
        )
        return cast(workflow_pb2.RunResearchWorkflowResponse, reply)

    async def RunWorkflow(
        self, request: workflow_pb2.RunWorkflowRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> workflow_pb2.RunWorkflowResponse:
        """Any kind, returned finished."""
        reply = await self._run(
            request,
            functools.partial(_answer, workflow_pb2.RunWorkflowResponse),
            _Spec.of(request.workflow.kind, request.workflow),
            context,
            "workflow.",
        )
        return cast(workflow_pb2.RunWorkflowResponse, reply)

    async def CreateWorkflow(
        self,
        request: workflow_pb2.CreateWorkflowRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> workflow_pb2.CreateWorkflowResponse:
        """Start a workflow in the background and return it at once."""
        if request.workflow_id and not _WORKFLOW_ID.match(request.workflow_id):
            check = RequestValidator()
            check.add("workflow_id", "must be 3 to 63 of [a-z0-9-], starting with a letter")
            check.check()
        spec = request.workflow
        params = self._shapes.resolve(spec.kind, spec.topic, spec.parameters, prefix="workflow.")
        params = dataclasses.replace(params, cache_scope=cache_scope(self._scope_mode, context))
        if spec.HasField("notification"):
            params = await self._notified(params, spec.notification, "workflow.")
        principal = current()  # access: per tenant and per key
        topic = spec.topic.strip()
        await self._daily.check(principal)  # QuotaExceededError when the key's day is spent
        workflow_id = request.workflow_id or self._ids.uuid4()
        answered = await self._answered(topic, params, workflow_id, principal, context)
        if answered.workflow is not None:
            return workflow_pb2.CreateWorkflowResponse(workflow=answered.workflow)  # SUCCEEDED
        twin_key = identity(principal.tenant, topic, params)
        name = f"workflows/{workflow_id}"
        running = await self._twin(twin_key, name, params)
        if running is not None and params.multitask_strategy != (
            workflow_pb2.MULTITASK_STRATEGY_ENQUEUE
        ):
            return workflow_pb2.CreateWorkflowResponse(workflow=running)  # joined
        after = running.name if running is not None else ""  # enqueued behind it
        release = self._budgets.acquire(principal)

        async def done(final: workflow_pb2.Workflow | None) -> None:
            release()
            if not after:
                await self._twins.release(twin_key, name)
            if final is not None:
                await self._daily.charge(principal, final)

        try:
            workflow = await self._engine.create(
                topic,
                params,
                workflow_id,
                tenant=principal.tenant,
                on_done=done,
                after=after,
                # Its lookup, unless it waits for a twin (whose answer the cache may then hold).
                looked_up=None if after else answered.lookup,
            )
        except BaseException:
            release()
            if not after:
                await asyncio.shield(self._twins.release(twin_key, name))
            raise
        return workflow_pb2.CreateWorkflowResponse(workflow=workflow)

    async def GetWorkflow(
        self, request: workflow_pb2.GetWorkflowRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> workflow_pb2.GetWorkflowResponse:
        """A workflow by name."""
        _check_name(request.name)
        workflow = await owned(self._engine.get, request.name, current())  # access
        return workflow_pb2.GetWorkflowResponse(workflow=workflow)

    async def ListWorkflows(
        self,
        request: workflow_pb2.ListWorkflowsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> workflow_pb2.ListWorkflowsResponse:
        """A page of workflows, newest first."""
        check = RequestValidator()
        check.number(
            "page_size", request.page_size, low=1, high=MAX_PAGE_SIZE, zero_means_default=True
        )
        check.text("filter", request.filter, max_length=1000, required=False)
        check.check()
        where = scoped(parse_filter(request.filter), current())  # access: the caller's tenant
        after = read_token(request.page_token, request.filter)
        size = request.page_size or DEFAULT_PAGE_SIZE
        page = await self._engine.list(where, limit=size, after=after)
        reply = workflow_pb2.ListWorkflowsResponse(workflows=page.workflows)
        if page.next_after is not None:  # a short page may have more after it (a long scan)
            reply.next_page_token = token_at(page.next_after, request.filter)
        return reply

    async def CancelWorkflow(
        self,
        request: workflow_pb2.CancelWorkflowRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> workflow_pb2.CancelWorkflowResponse:
        """Stop a pending or running workflow."""
        _check_name(request.name)
        await owned(self._engine.get, request.name, current())  # access
        return workflow_pb2.CancelWorkflowResponse(workflow=await self._engine.cancel(request.name))

    async def DeleteWorkflow(
        self,
        request: workflow_pb2.DeleteWorkflowRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> workflow_pb2.DeleteWorkflowResponse:
        """Delete a finished workflow (AIP-135); a pending or running one must be cancelled
        first (FAILED_PRECONDITION); another tenant's is NOT_FOUND."""
        _check_name(request.name)
        await owned(self._engine.get, request.name, current())  # access
        await self._engine.delete(request.name)
        return workflow_pb2.DeleteWorkflowResponse()

    async def WatchWorkflow(
        self,
        request: workflow_pb2.WatchWorkflowRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[workflow_pb2.WatchWorkflowResponse]:
        """The current state (or, resuming, the events after `after_sequence`), then live
        events until the workflow ends."""
        check = RequestValidator()
        if not _NAME.match(request.name):
            check.add("name", "must be workflows/{workflow}")
        if request.after_sequence < 0:
            check.add("after_sequence", "must be 0 or more")
        check.check()
        await owned(self._engine.get, request.name, current())  # access
        async for event in self._engine.watch(request.name, request.after_sequence):
            yield event
