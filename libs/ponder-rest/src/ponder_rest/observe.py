"""What a request leaves behind: its SERVER span, its access-log line and its metrics."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from opentelemetry import metrics, propagate
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from ponder_rest.exchange import Exchange
from ponder_rest.routes import Route
from ponder_runtime.metrics import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
    HTTP_SERVER_REQUEST_DURATION,
    TRANSPORT_REST,
    RpcMetrics,
)


# The facade's logger since before the split (the name is in every log line's "logger").
logger = logging.getLogger("ponder_rest.app")

_TRACE_HEADERS = (b"traceparent", b"tracestate", b"baggage")


class Observer:
    """The facade's tracer, meter and access-log switch."""

    def __init__(
        self,
        tracer: Tracer,
        meter: metrics.Meter,
        *,
        access_log: bool,
        rpc_metrics: RpcMetrics | None = None,
    ) -> None:
        self._tracer = tracer
        self._access_log = access_log
        self._rpc = rpc_metrics or RpcMetrics(meter)
        # Its count is the number of requests (Prometheus: `..._count`): no separate counter.
        self._duration = meter.create_histogram(
            HTTP_SERVER_REQUEST_DURATION,
            unit="s",
            description="Time to answer an HTTP request (its count: requests answered).",
        )

    @contextlib.contextmanager
    def request(self, exchange: Exchange) -> Iterator[Span]:
        """The request's SERVER span, continuing a W3C traceparent (named after the route once
        it is known); on the way out its status, the access-log line and the metrics."""
        parent = propagate.extract(
            {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in exchange.headers.items()
                if k in _TRACE_HEADERS
            }
        )
        with self._tracer.start_as_current_span(
            f"HTTP {exchange.method}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": exchange.method,
                "url.path": exchange.scope["path"],
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            context = span.get_span_context()
            if context.is_valid:
                exchange.response_headers.append(
                    (b"x-trace-id", format(context.trace_id, "032x").encode())
                )
            try:
                yield span
            finally:
                span.set_attribute("http.response.status_code", exchange.status)
                if exchange.status >= 500:
                    span.set_status(StatusCode.ERROR)
                self._log(exchange)
                self._measure(exchange)

    @staticmethod
    def routed(exchange: Exchange, span: Span, route: Route) -> None:
        """Name the span after the matched route and say which method it calls."""
        exchange.route = route.template.source
        exchange.rpc_method = route.grpc_path
        span.update_name(f"{route.http_method} {route.template.source}")
        span.set_attributes(
            {
                "http.route": route.template.source,
                "rpc.system": "grpc",
                "rpc.method": route.method.name,
                "rpc.service": route.method.containing_service.full_name,
            }
        )

    def _measure(self, exchange: Exchange) -> None:
        """Count and time the request by method, route template and status; a request that
        matched a route is also one RPC of its method in rpc.server.* (transport "rest")."""
        attributes: dict[str, str | int] = {
            HTTP_REQUEST_METHOD: exchange.method,
            HTTP_ROUTE: exchange.route,
            HTTP_RESPONSE_STATUS_CODE: exchange.status,
        }
        self._duration.record(time.perf_counter() - exchange.started, attributes)
        if exchange.rpc_method:
            self._rpc.record(
                exchange.rpc_method, exchange.rpc_code, exchange.started, TRANSPORT_REST
            )

    def _log(self, exchange: Exchange) -> None:
        """The access-log line (inside the request's span, so it carries its trace id)."""
        if self._access_log:
            logger.info(
                "http request",
                extra={
                    "http_method": exchange.method,
                    "http_path": exchange.scope.get("path", ""),
                    "http_status": exchange.status,
                    "duration_ms": round((time.perf_counter() - exchange.started) * 1000, 3),
                    "request_id": exchange.request_id,
                },
            )
