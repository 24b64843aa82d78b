"""OpenTelemetry tracing and metrics configured from the standard OTEL_* variables, with gRPC
instrumentation.

The SDK reads OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and the OTEL_EXPORTER_OTLP_*
variables itself; spans and metrics are exported over OTLP only when an endpoint is set. The aio
gRPC interceptors are installed explicitly (no monkey-patching) and skip grpc.health.v1, whose
Watch handler uses context.write() that the instrumentation cannot wrap.

Metrics can also be scraped as Prometheus text (GET /metrics) on PONDER_<SERVICE>_METRICS_PORT.
Nothing is global: each Telemetry has its own providers and its own prometheus_client
registry (not the process-wide REGISTRY), so several services and tests can live in one
process.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

import grpc
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry, start_http_server

from ponder_runtime.metrics import RpcMetrics, RpcMetricsInterceptor
from ponder_runtime.settings import ServiceSettings
from ponder_runtime.trace_header import TraceIdInterceptor


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """The Prometheus text endpoint (prometheus_client's WSGI server on a daemon thread)."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A service's tracer and meter providers and the gRPC interceptors bound to them."""

    tracer_provider: TracerProvider
    meter_provider: metrics.MeterProvider  # the SDK's, or a no-op one when nothing reads
    metrics_endpoint: MetricsEndpoint | None = None
    # Whether this process sends spans anywhere (an exporter or another span processor).
    exports_spans: bool = True
    # The rpc.server.* instruments, made once: the gRPC interceptor and the REST facade share them.
    rpc_metrics: RpcMetrics = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rpc_metrics", RpcMetrics(self.meter("ponder_runtime")))

    @property
    def metrics_port(self) -> int | None:
        """The port serving /metrics, or None when PONDER_<SERVICE>_METRICS_PORT is -1."""
        return self.metrics_endpoint.port if self.metrics_endpoint is not None else None

    def tracer(self, name: str) -> Tracer:
        """A tracer for instrumentation scope `name`."""
        return self.tracer_provider.get_tracer(name)

    def inner_tracer(self, name: str) -> Tracer | None:
        """A tracer for spans inside a request's span (scope `name`), or None when this
        process sends no span anywhere. With None, callers start no spans of their own: their
        work, logs and records carry the ids of the request's span (whose sampling decision
        the calls they make still propagate), and cost nothing for tracing."""
        if not self.exports_spans:
            return None
        return self.tracer(name)

    def meter(self, name: str) -> Meter:
        """A meter for instrumentation scope `name`."""
        return self.meter_provider.get_meter(name)

    def server_interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """Server-side span per RPC (health checks excluded), its trace id returned as
        `x-trace-id` header metadata; RPC count and duration by method and status."""
        return [
            aio_server_interceptor(
                tracer_provider=self.tracer_provider,
                filter_=filters.negate(filters.health_check()),
            ),
            RpcMetricsInterceptor(self.rpc_metrics),  # sees the final status
            TraceIdInterceptor(),  # inside the span: responses carry x-trace-id
        ]

    def client_interceptors(self) -> Sequence[grpc.aio.ClientInterceptor]:
        """Client-side span per RPC, propagating W3C traceparent in metadata."""
        interceptors: Sequence[grpc.aio.ClientInterceptor] = aio_client_interceptors(
            tracer_provider=self.tracer_provider,
            filter_=filters.negate(filters.health_check()),
        )
        return interceptors

    def shutdown(self) -> None:
        """Flush and stop exporting spans and metrics; close the /metrics endpoint."""
        self.tracer_provider.shutdown()
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown()  # the Prometheus reader leaves its registry
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()


def configure_telemetry(
    settings: ServiceSettings,
    *,
    extra_processors: Sequence[SpanProcessor] = (),
    extra_metric_readers: Sequence[MetricReader] = (),
) -> Telemetry:
    """Build the service's tracer and meter providers from settings and the OTEL_* environment
    (and start the /metrics endpoint when PONDER_<SERVICE>_METRICS_PORT is 0 or more)."""
    resource = Resource.create(
        {
            SERVICE_NAME: settings.otel_service_name or settings.service_name,
            "service.namespace": "ponder",
        }
    )
    processors: list[SpanProcessor] = list(extra_processors)
    if settings.otlp_export_enabled:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    elif settings.otel_traces_exporter == "console" and not settings.otel_sdk_disabled:
        # A local look without a collector: each span as JSON on stdout (the log file).
        processors.append(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    # With nowhere to send spans, record none of this process's own traces: spans still get
    # ids (logs, X-Trace-Id and the workflow's trace_id keep working, traceparent still
    # propagates) at almost no cost. A caller's sampled trace stays sampled on its way through
    # (parent-based), so the processes after this one still record their part of it.
    # OTEL_TRACES_SAMPLER, when set, decides instead.
    quiet = not processors and not settings.otel_traces_sampler
    provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF) if quiet else None)
    for processor in processors:
        provider.add_span_processor(processor)
    readers: list[MetricReader] = list(extra_metric_readers)
    if settings.otlp_metrics_export_enabled:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        # OTEL_METRIC_EXPORT_INTERVAL (default 60 s) sets the period.
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    endpoint = None
    if settings.metrics_port >= 0:
        registry = CollectorRegistry(auto_describe=True)  # ours, not prometheus_client.REGISTRY
        readers.append(PrometheusMetricReader(registry=registry))
        server, thread = start_http_server(
            settings.metrics_port, addr=settings.host, registry=registry
        )
        endpoint = MetricsEndpoint(server, thread)
    # Nothing reads metrics (no OTLP endpoint, no /metrics port): record none, at no cost.
    meters = (
        MeterProvider(metric_readers=readers, resource=resource) if readers else NoOpMeterProvider()
    )
    return Telemetry(provider, meters, endpoint, exports_spans=bool(processors))
