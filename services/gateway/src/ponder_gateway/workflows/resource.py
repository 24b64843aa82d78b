"""The workflow resource: a new PENDING one, its parameters back from it, its span."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode, Tracer

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.parameters import RunParameters
from ponder_runtime.attributes import (
    WORKFLOW_COST_USD,
    WORKFLOW_ID,
    WORKFLOW_INPUT_TOKENS,
    WORKFLOW_KIND,
    WORKFLOW_OUTCOME,
    WORKFLOW_OUTPUT_TOKENS,
)
from ponder_runtime.protobuf import timestamp


def new_workflow(
    topic: str, params: RunParameters, workflow_id: str = "", *, tenant: str = ""
) -> workflow_pb2.Workflow:
    """A fresh PENDING workflow resource of `tenant` (its owner, ownership.py; a random id
    unless one is given)."""
    workflow_id = workflow_id or str(uuid.uuid4())
    workflow = workflow_pb2.Workflow(
        name=f"workflows/{workflow_id}",
        id=workflow_id,
        kind=params.kind,
        topic=topic,
        state=workflow_pb2.WORKFLOW_STATE_PENDING,
        tenant=tenant,
        parameters=workflow_pb2.WorkflowParameters(
            sources=params.sources,
            max_sources=params.max_sources,
            max_iterations=params.max_iterations,
            score_threshold=params.score_threshold,
            cache_policy=params.cache_policy,
            max_tokens=params.max_tokens,
            max_cost_usd=params.max_cost_usd,
            multitask_strategy=params.multitask_strategy,
        ),
    )
    if params.notification is not None:
        workflow.notification.url = params.notification.url
        workflow.notification.secret_name = params.notification.secret_name
        workflow.notification_delivery.state = workflow_pb2.NOTIFICATION_DELIVERY_STATE_PENDING
    workflow.create_time.CopyFrom(timestamp())
    workflow.update_time.CopyFrom(workflow.create_time)
    return workflow


def parameters_of(workflow: workflow_pb2.Workflow, cache_scope: str = "global") -> RunParameters:
    """The resolved parameters a workflow resource was made with (its cache scope is not in
    the resource: the caller passes it along)."""
    given = workflow.parameters
    return RunParameters(
        kind=workflow.kind,
        sources=tuple(given.sources),
        max_sources=given.max_sources,
        max_iterations=given.max_iterations,
        score_threshold=given.score_threshold,
        cache_policy=given.cache_policy,
        cache_scope=cache_scope,
        max_tokens=given.max_tokens,
        max_cost_usd=given.max_cost_usd,
        multitask_strategy=given.multitask_strategy or workflow_pb2.MULTITASK_STRATEGY_JOIN,
    )


def usage_attributes(workflow: workflow_pb2.Workflow) -> dict[str, int | float]:
    """Span attributes of the workflow's own model usage: tokens in and out, cost in USD."""
    return {
        WORKFLOW_INPUT_TOKENS: workflow.usage.prompt_tokens,
        WORKFLOW_OUTPUT_TOKENS: workflow.usage.completion_tokens,
        WORKFLOW_COST_USD: workflow.usage.cost_usd,
    }


def record_trace_id(workflow: workflow_pb2.Workflow) -> None:
    """Put the current trace id on the workflow (so a user can quote it)."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        workflow.trace_id = format(span_context.trace_id, "032x")


@contextlib.contextmanager
def traced(tracer: Tracer | None, workflow: workflow_pb2.Workflow) -> Iterator[Span]:
    """The workflow's span (its steps, and the calls they make, are children); its outcome is
    set from the workflow's final state. Without a tracer (nothing records spans), no span of
    its own: the current one (the request's) is yielded, untouched."""
    if tracer is None:
        yield trace.get_current_span()
        return
    kind = workflow_pb2.WorkflowKind.Name(workflow.kind).removeprefix("WORKFLOW_KIND_")
    with tracer.start_as_current_span(
        f"workflow {kind.lower()}",
        attributes={WORKFLOW_ID: workflow.id, WORKFLOW_KIND: kind},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        finally:
            state = workflow_pb2.WorkflowState.Name(workflow.state)
            outcome = state.removeprefix("WORKFLOW_STATE_")
            span.set_attribute(WORKFLOW_OUTCOME, outcome)
            span.set_attributes(usage_attributes(workflow))
            if workflow.state != workflow_pb2.WORKFLOW_STATE_SUCCEEDED:
                span.set_status(StatusCode.ERROR, workflow.error.message or outcome)
