"""The gateway's own instruments (their names here; attribute keys in
ponder_runtime.attributes). Prometheus shows them with dots as underscores plus its suffixes,
e.g. `ponder_workflow_duration_seconds_bucket`."""

from __future__ import annotations

from opentelemetry.metrics import Meter, NoOpMeter

from ponder_runtime.attributes import (
    CACHE_REASON_CATEGORY,
    CACHE_RESULT,
    CACHE_VERDICT,
    WORKFLOW_KIND,
    WORKFLOW_OUTCOME,
)


__all__ = [
    "CACHE_LOOKUPS",
    "CACHE_LOOKUP_DURATION",
    "CACHE_REASON_CATEGORY",
    "CACHE_REJECTED",
    "CACHE_RESULT",
    "CACHE_VERDICT",
    "RATE_LIMIT_REJECTIONS",
    "RPC_METHOD",
    "WEBHOOK_ATTEMPTS",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_OUTCOME",
    "WORKFLOW_DURATION",
    "WORKFLOW_IN_FLIGHT",
    "WORKFLOW_KIND",
    "WORKFLOW_OUTCOME",
    "no_op_meter",
]


WORKFLOW_DURATION = "ponder.workflow.duration"  # histogram, seconds (queue wait included)
WORKFLOW_IN_FLIGHT = "ponder.workflow.in_flight"  # up-down counter: executing or queued
CACHE_LOOKUPS = "ponder.cache.lookups"  # counter, by result (the hit ratio), verdict, reason
# category
CACHE_LOOKUP_DURATION = "ponder.cache.lookup.duration"  # histogram, seconds, by result
RATE_LIMIT_REJECTIONS = "ponder.rate_limit.rejections"  # counter
CACHE_REJECTED = "ponder.cache.rejected"  # counter: cached results whose signature failed
WEBHOOK_DELIVERIES = "ponder.webhook.deliveries"  # counter: ended deliveries, by outcome
WEBHOOK_ATTEMPTS = "ponder.webhook.attempts"  # counter: POSTs, by outcome
# delivered, failed (deliveries); delivered, http_error, connection_error, refused (attempts)
WEBHOOK_OUTCOME = "ponder.webhook.outcome"

RPC_METHOD = "rpc.method"


def no_op_meter() -> Meter:
    """The default of the gateway's parts when nobody measures them (unit tests)."""
    return NoOpMeter("ponder_gateway")
