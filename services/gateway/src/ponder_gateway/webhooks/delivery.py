"""One workflow's webhook delivery: attempts until a 2xx answer, with exponential backoff and
jitter, for a bounded time after the workflow ended; the delivery state is saved on the
workflow's record after every attempt (so another gateway can take over). The clock, the
sleep and the jitter are injected (tests run the backoff without waiting)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from google.protobuf import timestamp_pb2
from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import StatusCode, Tracer

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.metrics import (
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_OUTCOME,
    no_op_meter,
)
from ponder_gateway.principals import DEFAULT_TENANT
from ponder_gateway.webhooks.destinations import (
    Destination,
    DestinationPolicy,
    IPAddress,
    RefusedDestination,
    UnresolvedDestination,
)
from ponder_gateway.webhooks.secrets import SecretKeys, WebhookSecrets
from ponder_gateway.webhooks.sender import Sender
from ponder_gateway.webhooks.signing import (
    ATTEMPT_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)
from ponder_gateway.webhooks.state import OPEN_DELIVERY_STATES, event_type, payload_view
from ponder_rest.codec import JsonOptions, dumps, message_to_obj
from ponder_runtime.attributes import WORKFLOW_ID


logger = logging.getLogger(__name__)

FINISHED = (
    workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
    workflow_pb2.WORKFLOW_STATE_FAILED,
    workflow_pb2.WORKFLOW_STATE_CANCELLED,
)
USER_AGENT = "Ponder-Webhooks/1"
_ERROR_CHARS = 300


class Records(Protocol):
    """The part of the WorkflowStore a delivery uses."""

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """A record by name."""
        ...

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a record."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff and bounds of a delivery (the PONDER_GATEWAY_WEBHOOK_* settings)."""

    initial_seconds: float = 1.0
    max_seconds: float = 300.0
    total_seconds: float = 3600.0
    timeout_seconds: float = 10.0

    def backoff(self, attempts: int, jitter: float) -> float:
        """Wait after `attempts` failed attempts: initial * 2^(attempts-1), capped, of which
        the upper half is scaled by `jitter` (0 to 1): "equal jitter"."""
        doubling = float(2 ** min(attempts - 1, 62))
        ceiling = min(self.max_seconds, self.initial_seconds * doubling)
        return ceiling / 2 + ceiling / 2 * jitter


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one attempt came to."""

    status: int = 0
    error: str = ""
    final: bool = False  # refused destination or secret: retrying cannot help

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return float(stamp.ToNanoseconds()) / 1e9


class Deliverer:
    """Delivers the webhook of a finished workflow, reading and saving its record."""

    def __init__(
        self,
        records: Records,
        policy: DestinationPolicy,
        secrets: WebhookSecrets,
        sender: Sender,
        *,
        retry: RetryPolicy,
        json: JsonOptions,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        meter: Meter | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._records = records
        self._policy = policy
        self._secrets = secrets
        self._sender = sender
        self._retry = retry
        self._json = json
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._tracer = tracer or trace.NoOpTracer()
        meter = meter or no_op_meter()
        self._deliveries = meter.create_counter(
            WEBHOOK_DELIVERIES,
            unit="{delivery}",
            description="Webhook deliveries that ended, by outcome (delivered, failed).",
        )
        self._attempts = meter.create_counter(
            WEBHOOK_ATTEMPTS,
            unit="{attempt}",
            description="Webhook attempts, by outcome (delivered, http_error, "
            "connection_error, refused).",
        )

    async def deliver(self, name: str) -> None:
        """Attempt until delivered or given up; returns at once when there is nothing to
        deliver (no target, not ended, already over, record gone)."""
        while True:
            record = await self._records.get(name)
            if record is None or record.state not in FINISHED:
                return
            delivery = record.notification_delivery
            if not record.HasField("notification") or delivery.state not in OPEN_DELIVERY_STATES:
                return
            now = self._clock()
            ended = record.end_time if record.HasField("end_time") else record.update_time
            give_up_at = _seconds(ended) + self._retry.total_seconds
            due = now
            if delivery.HasField("next_attempt_time"):
                due = _seconds(delivery.next_attempt_time)
            if due > now and due <= give_up_at:
                await self._sleep(due - now)
                continue  # read the record again: another gateway may have delivered it
            if now > give_up_at or due > give_up_at:
                await self._give_up(record, f"retried for {self._retry.total_seconds:g} s")
                return
            outcome = await self._attempt(record)
            if await self._record(record, outcome, give_up_at):
                return

    async def _attempt(self, record: workflow_pb2.Workflow) -> _Outcome:
        """One POST, signed and traced."""
        target = record.notification
        delivery = record.notification_delivery
        attempt = delivery.attempts + 1
        with self._tracer.start_as_current_span(
            "webhook deliver",
            kind=trace.SpanKind.CLIENT,
            attributes={
                WORKFLOW_ID: record.id,
                "http.request.method": "POST",
                "ponder.webhook.attempt": attempt,
                "ponder.webhook.event_id": delivery.event_id,
            },
        ) as span:
            outcome = await self._post(record, attempt)
            kind = self._kind(outcome)
            span.set_attribute(WEBHOOK_OUTCOME, kind)
            if outcome.status:
                span.set_attribute("http.response.status_code", outcome.status)
            if not outcome.delivered:
                span.set_status(StatusCode.ERROR, outcome.error)
        self._attempts.add(1, {WEBHOOK_OUTCOME: kind})
        logger.info(
            "webhook attempt",
            extra={
                "workflow": record.name,
                "attempt": attempt,
                "outcome": kind,
                "status": outcome.status,
                "error": outcome.error,
                "secret": target.secret_name,
            },
        )
        return outcome

    @staticmethod
    def _kind(outcome: _Outcome) -> str:
        if outcome.delivered:
            return "delivered"
        if outcome.final:
            return "refused"
        return "http_error" if outcome.status else "connection_error"

    async def _checked(
        self, record: workflow_pb2.Workflow
    ) -> tuple[SecretKeys, Destination, list[IPAddress]] | _Outcome:
        """The secret's keys and the checked destination, checked again (settings and DNS
        may have changed since the create); or why not."""
        target = record.notification
        keys = self._secrets.lookup(target.secret_name, record.tenant or DEFAULT_TENANT)
        if keys is None:
            return _Outcome(error=f"secret {target.secret_name} is not configured", final=True)
        try:
            destination = self._policy.parse(target.url)
            return keys, destination, await self._policy.addresses(destination)
        except UnresolvedDestination as exc:
            return _Outcome(error=str(exc))
        except RefusedDestination as exc:
            return _Outcome(error=f"destination refused: {exc}", final=True)

    async def _post(self, record: workflow_pb2.Workflow, attempt: int) -> _Outcome:
        """POST to the checked addresses in turn until one answers."""
        checked = await self._checked(record)
        if isinstance(checked, _Outcome):
            return checked
        keys, destination, addresses = checked
        body = dumps(
            message_to_obj(
                workflow_pb2.GetWorkflowResponse(workflow=payload_view(record)), self._json
            )
        )
        timestamp = int(self._clock())
        headers = {
            "Host": destination.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(keys, timestamp, body),
            EVENT_ID_HEADER: record.notification_delivery.event_id,
            EVENT_TYPE_HEADER: event_type(record),
            ATTEMPT_HEADER: str(attempt),
        }
        error = ""
        for address in addresses:
            try:
                status = await self._sender.post(
                    destination.url_for(address),
                    headers,
                    body,
                    server_name=destination.host,
                    timeout=self._retry.timeout_seconds,
                )
            except httpx.TimeoutException:
                return _Outcome(error=f"no answer within {self._retry.timeout_seconds:g} s")
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS] or "connection failed"
                continue  # the next address
            if 200 <= status < 300:
                return _Outcome(status=status)
            return _Outcome(status=status, error=f"HTTP {status}")
        return _Outcome(error=error or "no address answered")

    async def _record(
        self, record: workflow_pb2.Workflow, outcome: _Outcome, give_up_at: float
    ) -> bool:
        """Save the attempt on the record; True when the delivery is over."""
        now = self._clock()
        delivery = workflow_pb2.NotificationDelivery()
        delivery.CopyFrom(record.notification_delivery)
        delivery.attempts += 1
        delivery.last_status_code = outcome.status
        delivery.last_attempt_time.CopyFrom(_stamp(now))
        if outcome.delivered:
            delivery.state = workflow_pb2.NOTIFICATION_DELIVERY_STATE_DELIVERED
            delivery.last_error = ""
            delivery.deliver_time.CopyFrom(_stamp(now))
            delivery.ClearField("next_attempt_time")
            await self._save(record.name, delivery, "delivered")
            return True
        delivery.last_error = outcome.error
        wait = self._retry.backoff(delivery.attempts, self._jitter())
        if outcome.final or now + wait > give_up_at:
            delivery.state = workflow_pb2.NOTIFICATION_DELIVERY_STATE_FAILED
            delivery.ClearField("next_attempt_time")
            await self._save(record.name, delivery, "failed")
            return True
        delivery.state = workflow_pb2.NOTIFICATION_DELIVERY_STATE_DELIVERING
        delivery.next_attempt_time.CopyFrom(_stamp(now + wait))
        await self._save(record.name, delivery, "")
        return False

    async def _give_up(self, record: workflow_pb2.Workflow, why: str) -> None:
        """FAILED without another attempt (the retry time ran out)."""
        delivery = workflow_pb2.NotificationDelivery()
        delivery.CopyFrom(record.notification_delivery)
        delivery.state = workflow_pb2.NOTIFICATION_DELIVERY_STATE_FAILED
        delivery.last_error = f"{delivery.last_error}; gave up: {why}".lstrip("; ")
        delivery.ClearField("next_attempt_time")
        await self._save(record.name, delivery, "failed")

    async def _save(
        self, name: str, delivery: workflow_pb2.NotificationDelivery, outcome: str
    ) -> None:
        """Put the delivery on the current record (unless it was deleted meanwhile)."""
        current = await self._records.get(name)
        if current is None:
            return
        current.notification_delivery.CopyFrom(delivery)
        await self._records.save(current)
        if outcome:
            self._deliveries.add(1, {WEBHOOK_OUTCOME: outcome})
            log = logger.info if outcome == "delivered" else logger.warning
            log(
                f"webhook {outcome}",
                extra={
                    "workflow": name,
                    "attempts": delivery.attempts,
                    "error": delivery.last_error,
                },
            )
