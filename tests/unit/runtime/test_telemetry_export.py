"""Spans leave the process over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (a real local
OTLP/gRPC receiver), and JSON logs written inside an RPC carry its trace id."""

from __future__ import annotations

import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, configure_telemetry, load_settings
from ponder_runtime.logs import TraceContextFilter, configure_logging


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request, context):
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def receiver():
    """A running OTLP/gRPC receiver on a free port, on its own threads like a real collector
    in another process (the SDK's exporter blocks its caller): (receiver, port)."""
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    receiver = _Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver, port
    server.stop(0)


async def test_spans_are_exported_over_otlp(receiver, monkeypatch):
    """With an OTLP endpoint configured, the server span of an RPC reaches the receiver,
    named after the method and tagged with the service name, by the time the service stops."""
    collector, port = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    settings = load_settings(ResearchSettings, host="127.0.0.1", port=0)
    assert settings.otlp_export_enabled
    telemetry = configure_telemetry(settings)
    server = ServiceServer(settings, ResearchModule(settings, telemetry), telemetry)
    bound = await server.start()
    await server.mark_ready()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{bound}") as channel:
        stub = research_grpc.ResearchServiceStub(channel)
        await stub.SearchSources(research_pb2.SearchSourcesRequest(query="transformers"))
    await server.stop(0)  # flushes the batch span processor
    spans = [
        (resource_spans.resource, span)
        for request in collector.requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    names = {span.name for _, span in spans}
    assert "/ponder.research.v1.ResearchService/SearchSources" in names
    resource = {a.key: a.value.string_value for a in spans[0][0].attributes}
    assert resource["service.name"] == "research"
    assert resource["service.namespace"] == "ponder"
    assert resource["deployment.environment"] == "test"


def test_json_log_lines_carry_the_current_trace_id():
    """A record logged inside a span has that span's trace and span ids as hex fields."""
    from opentelemetry.sdk.trace import TracerProvider

    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("research", level="INFO", fmt="json")
    handler = root.handlers[0]
    handler.stream = stream  # type: ignore[attr-defined]
    tracer = TracerProvider().get_tracer("test")
    try:
        with tracer.start_as_current_span("work") as span:
            logging.getLogger("ponder.test").info("inside", extra={"items": 3})
        logging.getLogger("ponder.test").info("outside")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["service"] == "research"
    assert inside["level"] == "INFO"
    assert inside["items"] == 3
    assert "timestamp" in inside
    assert outside["trace_id"] == ""
    assert any(isinstance(f, TraceContextFilter) for f in handler.filters)


def test_console_exporter_prints_spans(monkeypatch, capsys):
    """OTEL_TRACES_EXPORTER=console (no collector needed): each span as JSON on stdout."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    settings = load_settings(ResearchSettings, host="127.0.0.1", port=0)
    telemetry = configure_telemetry(settings)
    with telemetry.tracer("test").start_as_current_span("look-at-me") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    telemetry.shutdown()
    printed = capsys.readouterr().out
    assert '"name": "look-at-me"' in printed
    assert trace_id in printed


def test_without_an_exporter_spans_have_ids_but_record_nothing(monkeypatch):
    """Nothing to export to: the process's own spans are not recorded (no cost), but still
    carry valid trace ids for logs, headers and the workflow's trace_id; a caller's sampled
    trace stays sampled; OTEL_TRACES_SAMPLER overrides all that."""
    settings = load_settings(ResearchSettings, host="127.0.0.1", port=0)
    quiet = configure_telemetry(settings)
    with quiet.tracer("test").start_as_current_span("quiet") as span:
        assert not span.is_recording()
        assert span.get_span_context().is_valid
    # A caller's sampled trace stays sampled through the quiet process (parent-based), so
    # the processes it calls next still record their part of it.
    caller = TraceContextTextMapPropagator().extract(
        {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"}
    )
    with quiet.tracer("test").start_as_current_span("relayed", context=caller) as span:
        assert span.is_recording()
        assert span.get_span_context().trace_flags.sampled
        assert format(span.get_span_context().trace_id, "032x") == "ab" * 16
    quiet.shutdown()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    sampled = configure_telemetry(load_settings(ResearchSettings, host="127.0.0.1", port=0))
    with sampled.tracer("test").start_as_current_span("sampled") as span:
        assert span.is_recording()
    sampled.shutdown()


def test_no_inner_tracer_when_nothing_records_spans():
    """With nowhere to send spans there is no inner tracer, so workflow and step spans are
    not even started; with an exporter there is one, and its spans are recorded."""
    quiet = configure_telemetry(load_settings(ResearchSettings))
    assert quiet.inner_tracer("ponder_test") is None
    exporter = InMemorySpanExporter()
    loud = configure_telemetry(
        load_settings(ResearchSettings), extra_processors=[SimpleSpanProcessor(exporter)]
    )
    tracer = loud.inner_tracer("ponder_test")
    assert tracer is not None
    with tracer.start_as_current_span("inner"):
        pass
    assert [span.name for span in exporter.get_finished_spans()] == ["inner"]
    quiet.shutdown()
    loud.shutdown()
