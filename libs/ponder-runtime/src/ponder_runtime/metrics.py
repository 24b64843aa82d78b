"""OpenTelemetry metrics shared by the services: the instrument names and attribute keys (in
one place, semantic-convention style), and the server interceptor that counts and times RPCs.

Prometheus sees the names with dots as underscores plus its suffixes, e.g.
`rpc_server_requests_total` and `rpc_server_duration_milliseconds_bucket`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import grpc
from opentelemetry.metrics import Counter, Histogram, Meter

from ponder_runtime.interceptors import (
    Wrap,
    WrappingInterceptor,
    finished_stream,
    finished_unary,
)


# --- gRPC server (every service) -----------------------------------------------------------
RPC_SERVER_REQUESTS = "rpc.server.requests"  # counter, one per finished RPC
RPC_SERVER_DURATION = "rpc.server.duration"  # histogram, milliseconds
RPC_METHOD = "rpc.method"  # "/pkg.Service/Method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"  # int, 0 = OK
# "grpc" for calls over gRPC, "rest" for the gateway's REST facade calling the same methods
# in-process: a dashboard summing by method and code shows both, and can split by transport.
RPC_TRANSPORT = "ponder.rpc.transport"
TRANSPORT_GRPC = "grpc"
TRANSPORT_REST = "rest"

# --- upstream calls (ResilientCaller) -------------------------------------------------------
UPSTREAM_DURATION = "ponder.upstream.duration"  # histogram, s, by upstream and final outcome
UPSTREAM_RETRIES = "ponder.upstream.retries"  # counter, by upstream and failure kind
UPSTREAM_BREAKER_STATE = "ponder.upstream.breaker.state"  # gauge: 0 closed, 1 half-open, 2 open

# --- research sources and embedding batches -------------------------------------------------
SOURCE_DURATION = "ponder.source.duration"  # histogram, s, by source and state
EMBEDDING_BATCH_TEXTS = "ponder.embedding.batch.texts"  # histogram: texts per model batch
EMBEDDING_QUEUE_WAIT = "ponder.embedding.queue.wait"  # histogram, s: oldest text's wait
EMBEDDING_ENCODE_DURATION = "ponder.embedding.encode.duration"  # histogram, s, per batch
# counter: semantic-cache lookups by verdict (exact, accepted, rejected, below_threshold, empty)
# and, for rejections, reason category (polarity, antonym, role_order, number, entity, content)
EMBEDDING_CACHE_LOOKUPS = "ponder.embedding.cache.lookups"

# --- HTTP server (the REST facade) ---------------------------------------------------------
HTTP_SERVER_REQUEST_DURATION = "http.server.request.duration"  # histogram, seconds
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"  # the path template; "" when no route matched
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"


Behavior = Callable[[Any, Any], Any]


class RpcMetrics:
    """The RPC instruments of one meter."""

    def __init__(self, meter: Meter) -> None:
        self.requests: Counter = meter.create_counter(
            RPC_SERVER_REQUESTS, unit="{request}", description="RPCs handled, by method and status."
        )
        self.duration: Histogram = meter.create_histogram(
            RPC_SERVER_DURATION, unit="ms", description="Time to handle an RPC."
        )

    def record(
        self,
        method: str,
        code: grpc.StatusCode | int,
        started: float,
        transport: str = TRANSPORT_GRPC,
    ) -> None:
        """One finished RPC: its method, final status code, start (perf_counter) and transport."""
        number = code.value[0] if isinstance(code, grpc.StatusCode) else code
        attributes: dict[str, str | int] = {
            RPC_METHOD: method,
            RPC_GRPC_STATUS_CODE: number,
            RPC_TRANSPORT: transport,
        }
        self.requests.add(1, attributes)
        self.duration.record((time.perf_counter() - started) * 1000, attributes)


def final_status(
    context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None
) -> grpc.StatusCode:
    """The status the RPC ended with: what the handler set or aborted with, else what grpc
    makes of the exception (UNKNOWN; CANCELLED when the call was cancelled)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # some grpc versions keep the number
        for known in grpc.StatusCode:
            if known.value[0] == code:
                return known
    if exc is None:
        return grpc.StatusCode.OK
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class RpcMetricsInterceptor(WrappingInterceptor):
    """Counts and times unary and server-streaming RPCs (health checks excluded) by method and
    final status code. Runs outside the error mapping, so it sees the status the client gets."""

    unary_requests_only = True

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics

    def wraps(self, method: str) -> tuple[Wrap, Wrap]:
        """Wrap the handler's behaviour with the measurement."""

        def done(
            context: grpc.aio.ServicerContext[Any, Any],
            failure: BaseException | None,
            started: float,
        ) -> None:
            self._metrics.record(method, final_status(context, failure), started)

        return partial(finished_unary, done), partial(finished_stream, done)
