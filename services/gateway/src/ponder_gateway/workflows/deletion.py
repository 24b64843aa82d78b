"""DeleteWorkflow (AIP-135), the same on both engines: only a finished workflow goes, with its
events; its result stays while another record (a cache hit) refers to it."""

from __future__ import annotations

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.store import WorkflowStore
from ponder_gateway.workflows.events import FINAL_STATES, EventLog
from ponder_runtime import FailedPreconditionError, NotFoundError


def still_running(workflow: workflow_pb2.Workflow) -> FailedPreconditionError:
    """The error for deleting a workflow that has not ended."""
    state = workflow_pb2.WorkflowState.Name(workflow.state)
    return FailedPreconditionError(
        f"{workflow.name} is {state}: cancel it first (CancelWorkflow), then delete it",
        metadata={"name": workflow.name},
    )


async def delete_finished(
    store: WorkflowStore, log: EventLog, workflow: workflow_pb2.Workflow
) -> None:
    """Delete `workflow` (as just read) and its events; FAILED_PRECONDITION unless it ended,
    NOT_FOUND when it went meanwhile."""
    if workflow.state not in FINAL_STATES:
        raise still_running(workflow)
    if not await store.delete(workflow.name):
        raise NotFoundError(f"{workflow.name} does not exist", metadata={"name": workflow.name})
    await log.delete([workflow.name])
