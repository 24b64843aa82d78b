"""The gateway's own instruments (names and attribute keys in one place). Prometheus shows them
with dots as underscores plus its suffixes, e.g. `ponder_workflow_duration_seconds_bucket`."""

from __future__ import annotations

from opentelemetry.metrics import Meter, NoOpMeter


WORKFLOW_DURATION = "ponder.workflow.duration"  # histogram, seconds (queue wait included)
WORKFLOW_IN_FLIGHT = "ponder.workflow.in_flight"  # up-down counter: executing or queued
CACHE_LOOKUPS = "ponder.cache.lookups"  # counter
RATE_LIMIT_REJECTIONS = "ponder.rate_limit.rejections"  # counter

WORKFLOW_KIND = "ponder.workflow.kind"  # RESEARCH, REFLECTION, RESEARCH_REFLECTION
WORKFLOW_OUTCOME = "ponder.workflow.outcome"  # SUCCEEDED, FAILED, CANCELLED
CACHE_RESULT = "ponder.cache.result"  # hit, miss, error
RPC_METHOD = "rpc.method"


def no_op_meter() -> Meter:
    """The default of the gateway's parts when nobody measures them (unit tests)."""
    return NoOpMeter("ponder_gateway")
