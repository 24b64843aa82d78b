"""A workflow's delivery state (pure bookkeeping: no I/O, no clock of its own, so the Temporal
workflow's recorder can use it)."""

from __future__ import annotations

import uuid

from google.protobuf import timestamp_pb2

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2


OPEN_DELIVERY_STATES = (
    workflow_pb2.NOTIFICATION_DELIVERY_STATE_PENDING,
    workflow_pb2.NOTIFICATION_DELIVERY_STATE_DELIVERING,
)
_EVENT_TYPES = {
    workflow_pb2.WORKFLOW_STATE_SUCCEEDED: "workflow.succeeded",
    workflow_pb2.WORKFLOW_STATE_FAILED: "workflow.failed",
    workflow_pb2.WORKFLOW_STATE_CANCELLED: "workflow.cancelled",
}


def event_type(workflow: workflow_pb2.Workflow) -> str:
    """The Ponder-Event-Type of a finished workflow's webhook."""
    return _EVENT_TYPES.get(workflow.state, "workflow.ended")


def event_id(workflow: workflow_pb2.Workflow) -> str:
    """The webhook's id: the same on every attempt and replica (from the name and the
    creation time, so a later workflow reusing the id gets another one)."""
    seed = f"ponder:{workflow.name}@{workflow.create_time.ToNanoseconds()}"
    return f"evt_{uuid.uuid5(uuid.NAMESPACE_URL, seed).hex}"


def mark_ended(workflow: workflow_pb2.Workflow, now: timestamp_pb2.Timestamp) -> None:
    """A workflow with a notification target ended: its delivery is PENDING, due now (once:
    a delivery already under way or over is left alone)."""
    if not workflow.HasField("notification"):
        return
    delivery = workflow.notification_delivery
    if delivery.event_id:
        return
    delivery.state = workflow_pb2.NOTIFICATION_DELIVERY_STATE_PENDING
    delivery.event_id = event_id(workflow)
    delivery.next_attempt_time.CopyFrom(now)


def due_at(workflow: workflow_pb2.Workflow) -> int | None:
    """When the record's open delivery is next due (ns since the epoch); None when it has no
    delivery under way (none asked for, not ended yet, delivered or given up)."""
    delivery = workflow.notification_delivery
    if not workflow.HasField("notification") or delivery.state not in OPEN_DELIVERY_STATES:
        return None
    return int(delivery.next_attempt_time.ToNanoseconds())


def payload_view(workflow: workflow_pb2.Workflow) -> workflow_pb2.Workflow:
    """What a webhook carries: the workflow without its delivery state (so every attempt
    sends the same body)."""
    view = workflow_pb2.Workflow()
    view.CopyFrom(workflow)
    view.ClearField("notification_delivery")
    return view
