"""gRPC servicer of ponder.workflow.v1.WorkflowService."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.listing import make_token, parse_filter, read_token
from ponder_gateway.manager import WorkflowManager
from ponder_gateway.parameters import resolve_parameters
from ponder_runtime import RequestValidator


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_WORKFLOW_ID = re.compile(r"^[a-z][a-z0-9-]{2,62}$")
_NAME = re.compile(r"^workflows/[a-z0-9][a-z0-9-]{2,62}$")


def _check_name(name: str) -> None:
    check = RequestValidator()
    if not _NAME.match(name):
        check.add("name", "must be workflows/{workflow}")
    check.check()


class WorkflowServicer(workflow_grpc.WorkflowServiceServicer):
    """Validates workflow requests and hands them to the WorkflowManager."""

    def __init__(self, manager: WorkflowManager) -> None:
        self._manager = manager

    async def _run(
        self,
        kind: workflow_pb2.WorkflowKind,
        topic: str,
        parameters: workflow_pb2.WorkflowParameters,
        context: grpc.aio.ServicerContext,
        prefix: str = "",
    ) -> workflow_pb2.Workflow:
        params = resolve_parameters(kind, topic, parameters, prefix=prefix)
        self._manager.admit()
        try:
            workflow = self._manager.new(topic.strip(), params)
            return await self._manager.execute(workflow, params, context)
        finally:
            self._manager.release()

    async def RunReflectionWorkflow(
        self,
        request: workflow_pb2.RunReflectionWorkflowRequest,
        context: grpc.aio.ServicerContext,
    ) -> workflow_pb2.RunReflectionWorkflowResponse:
        """Topic -> library sources -> ranked -> reflection, returned finished."""
        workflow = await self._run(
            workflow_pb2.WORKFLOW_KIND_REFLECTION, request.topic, request.parameters, context
        )
        return workflow_pb2.RunReflectionWorkflowResponse(workflow=workflow)

    async def RunResearchWorkflow(
        self,
        request: workflow_pb2.RunResearchWorkflowRequest,
        context: grpc.aio.ServicerContext,
    ) -> workflow_pb2.RunResearchWorkflowResponse:
        """Topic -> sources -> ranked -> cited summary, returned finished."""
        workflow = await self._run(
            workflow_pb2.WORKFLOW_KIND_RESEARCH, request.topic, request.parameters, context
        )
        return workflow_pb2.RunResearchWorkflowResponse(workflow=workflow)

    async def RunWorkflow(
        self, request: workflow_pb2.RunWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.RunWorkflowResponse:
        """Any kind, returned finished."""
        spec = request.workflow
        workflow = await self._run(spec.kind, spec.topic, spec.parameters, context, "workflow.")
        return workflow_pb2.RunWorkflowResponse(workflow=workflow)

    async def CreateWorkflow(
        self, request: workflow_pb2.CreateWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.CreateWorkflowResponse:
        """Start a workflow in the background and return it at once."""
        if request.workflow_id and not _WORKFLOW_ID.match(request.workflow_id):
            check = RequestValidator()
            check.add("workflow_id", "must be 3 to 63 of [a-z0-9-], starting with a letter")
            check.check()
        spec = request.workflow
        params = resolve_parameters(spec.kind, spec.topic, spec.parameters, prefix="workflow.")
        workflow = await self._manager.create(spec.topic.strip(), params, request.workflow_id)
        return workflow_pb2.CreateWorkflowResponse(workflow=workflow)

    async def GetWorkflow(
        self, request: workflow_pb2.GetWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.GetWorkflowResponse:
        """A workflow by name."""
        _check_name(request.name)
        return workflow_pb2.GetWorkflowResponse(workflow=await self._manager.get(request.name))

    async def ListWorkflows(
        self, request: workflow_pb2.ListWorkflowsRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ListWorkflowsResponse:
        """A page of workflows, newest first."""
        check = RequestValidator()
        check.number(
            "page_size", request.page_size, low=1, high=MAX_PAGE_SIZE, zero_means_default=True
        )
        check.text("filter", request.filter, max_length=1000, required=False)
        check.check()
        where = parse_filter(request.filter)
        after = read_token(request.page_token, request.filter)
        size = request.page_size or DEFAULT_PAGE_SIZE
        page = await self._manager.list(where, limit=size + 1, after=after)
        reply = workflow_pb2.ListWorkflowsResponse(workflows=page[:size])
        if len(page) > size:
            reply.next_page_token = make_token(page[size - 1], request.filter)
        return reply

    async def CancelWorkflow(
        self, request: workflow_pb2.CancelWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.CancelWorkflowResponse:
        """Stop a pending or running workflow."""
        _check_name(request.name)
        return workflow_pb2.CancelWorkflowResponse(
            workflow=await self._manager.cancel(request.name)
        )

    async def WatchWorkflow(
        self, request: workflow_pb2.WatchWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[workflow_pb2.WatchWorkflowResponse]:
        """The current state, then live events until the workflow ends."""
        _check_name(request.name)
        async for event in self._manager.watch(request.name):
            yield event
