"""What one recorded span of the REST facade costs in the OpenTelemetry Python SDK: making it
(start, the facade's attributes, end, a span processor) and encoding it to OTLP protobuf (what
the batch processor's thread does before exporting). Both hold the GIL, so on a saturated
event loop they come straight out of requests/s (see BENCHMARKS.md, issue 8).

Usage: .venv/bin/python bench/bench_span_cost.py [--spans 5000]
"""

from __future__ import annotations

import argparse
import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind


BATCH = 512  # the batch span processor's default export batch


def main() -> None:
    """Make `--spans` spans like the facade's, then encode them in export-sized batches."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=5000)
    count = parser.parse_args().spans
    kept = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "gateway", "service.namespace": "ponder"})
    )
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("bench")
    started = time.perf_counter()
    for _ in range(count):
        with tracer.start_as_current_span(
            "HTTP POST",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "url.path": "/v1/workflows/reflection"},
        ) as span:
            span.update_name("POST /v1/workflows/reflection")
            span.set_attributes(
                {
                    "http.route": "/v1/workflows/reflection",
                    "rpc.system": "grpc",
                    "rpc.method": "RunReflectionWorkflow",
                    "rpc.service": "ponder.workflow.v1.WorkflowService",
                }
            )
            span.set_attribute("http.response.status_code", 200)
    made = (time.perf_counter() - started) / count
    spans = kept.get_finished_spans()
    started = time.perf_counter()
    size = 0
    for first in range(0, count, BATCH):
        size += len(encode_spans(spans[first : first + BATCH]).SerializeToString())
    encoded = (time.perf_counter() - started) / count
    print("| per span | µs |")
    print("|---|---|")
    print(f"| make (start, 7 attributes, end, processor) | {made * 1e6:.1f} |")
    print(f"| encode to OTLP protobuf ({size / count:.0f} bytes) | {encoded * 1e6:.1f} |")
    print(f"| total | {(made + encoded) * 1e6:.1f} |")


if __name__ == "__main__":
    main()
