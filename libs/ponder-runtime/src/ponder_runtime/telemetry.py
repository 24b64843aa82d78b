"""OpenTelemetry tracing configured from the standard OTEL_* variables, with gRPC instrumentation.

The SDK reads OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and the OTEL_EXPORTER_OTLP_*
variables itself; spans are exported over OTLP only when an endpoint is set. The aio gRPC
interceptors are installed explicitly (no monkey-patching) and skip grpc.health.v1, whose
Watch handler uses context.write() that the instrumentation cannot wrap.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Tracer

from ponder_runtime.settings import ServiceSettings
from ponder_runtime.trace_header import TraceIdInterceptor


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A service's tracer provider and the gRPC interceptors bound to it."""

    tracer_provider: TracerProvider

    def tracer(self, name: str) -> Tracer:
        """A tracer for instrumentation scope `name`."""
        return self.tracer_provider.get_tracer(name)

    def server_interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """Server-side span per RPC (health checks excluded), its trace id returned as
        `x-trace-id` header metadata."""
        return [
            aio_server_interceptor(
                tracer_provider=self.tracer_provider,
                filter_=filters.negate(filters.health_check()),
            ),
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
        """Flush and stop exporting spans."""
        self.tracer_provider.shutdown()


def configure_telemetry(
    settings: ServiceSettings, *, extra_processors: Sequence[SpanProcessor] = ()
) -> Telemetry:
    """Build the service's tracer provider from settings and the OTEL_* environment."""
    resource = Resource.create(
        {
            SERVICE_NAME: settings.otel_service_name or settings.service_name,
            "service.namespace": "ponder",
        }
    )
    provider = TracerProvider(resource=resource)
    if settings.otlp_export_enabled:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif settings.otel_traces_exporter == "console" and not settings.otel_sdk_disabled:
        # A local look without a collector: each span as JSON on stdout (the log file).
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    return Telemetry(provider)
