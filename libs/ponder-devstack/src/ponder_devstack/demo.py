"""The sample workflow `make run` runs once the stack is up, and how its result is printed."""

from __future__ import annotations

import textwrap

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc


SAMPLE_TOPIC = "How can language model agents use retrieval and self-reflection to improve answers?"


async def run_sample(gateway: str, topic: str = SAMPLE_TOPIC) -> workflow_pb2.Workflow:
    """Run the synchronous reflection workflow on `topic` through the gateway."""
    async with grpc.aio.insecure_channel(gateway) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        reply = await stub.RunReflectionWorkflow(
            workflow_pb2.RunReflectionWorkflowRequest(topic=topic), timeout=120
        )
    workflow: workflow_pb2.Workflow = reply.workflow
    return workflow


def format_workflow(workflow: workflow_pb2.Workflow) -> str:
    """A human-readable report: state, timing, the cited text and its references."""
    result = workflow.result
    seconds = workflow.execution_time.ToNanoseconds() / 1e9
    lines = [
        f"workflow {workflow.name}: {workflow_pb2.WorkflowState.Name(workflow.state)} "
        f"in {seconds:.2f}s (provider {result.provider}/{result.model}, "
        f"score {result.score:.1f}, {len(result.iterations)} iteration(s))",
        f"topic: {workflow.topic}",
        "",
        *(
            line
            for paragraph in result.text.splitlines()
            for line in (textwrap.wrap(paragraph, width=100) or [""])
        ),
        "",
        "references:",
    ]
    for citation in sorted(result.citations, key=lambda c: c.index):
        lines.append(f"  [{citation.index}] {citation.title} - {citation.url}")
    lines.extend(f"warning: {warning}" for warning in workflow.warnings)
    return "\n".join(lines)
