"""gRPC servicer of ponder.workflow.v1.WorkflowService (synchronous workflows).

The long-running methods (Create/Get/List/Cancel/Watch) arrive with issue 6 and answer
UNIMPLEMENTED until then (the generated base methods).
"""

from __future__ import annotations

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.parameters import resolve_parameters
from ponder_gateway.runner import WorkflowRunner


class WorkflowServicer(workflow_grpc.WorkflowServiceServicer):
    """Validates workflow requests and runs them with the WorkflowRunner."""

    def __init__(self, runner: WorkflowRunner) -> None:
        self._runner = runner

    async def _run(
        self,
        kind: workflow_pb2.WorkflowKind,
        topic: str,
        parameters: workflow_pb2.WorkflowParameters,
        context: grpc.aio.ServicerContext,
        prefix: str = "",
    ) -> workflow_pb2.Workflow:
        params = resolve_parameters(kind, topic, parameters, prefix=prefix)
        workflow = self._runner.new_workflow(topic.strip(), params)
        return await self._runner.run(workflow, params, context)

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
