"""Tracing overhead on the cache-hit workflow path: spans off (the default without an exporter)
against spans on at 100% sampling and at 10% (parent-based trace-id ratio), exported over OTLP
to a local receiver.

Usage: .venv/bin/python bench/bench_tracing.py [--duration 10] [--rounds 3] [--connections 10]

Three stacks run side by side (four processes each), one per mode; the rounds alternate between
them so that machine noise falls on both. Each round loads `POST /v1/workflows/reflection` with
one repeated topic (a cache hit) with wrk, and reports requests/s and latency; the receiver
counts the spans it was sent, so "on" is known to really export. Target (issue 8): tracing on
costs at most 10% of the requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from ponder_devstack import Stack, StackPorts
from ponder_devstack.fake_openai import serve_fake_openai


# The REST load helpers of bench_rest.py, beside this script (bench/ is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
rest: Any = importlib.import_module("bench_rest")
HIGH_RATE, PONDER_PATH = rest.HIGH_RATE, rest.PONDER_PATH


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that counts the spans it is sent."""

    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def Export(self, request, context):
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with self._lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()


def make_stack(root: Path, name: str, env: dict[str, str], openai_url: str) -> tuple[Stack, int]:
    ports = StackPorts.free()
    directory = root / name
    directory.mkdir()
    stack = Stack(
        ports=ports,
        log_dir=directory,
        extra_env={
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": openai_url,
            "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": HIGH_RATE,
            "PONDER_GATEWAY_RATE_LIMIT_BURST": HIGH_RATE,
            "PONDER_GATEWAY_STORE_PATH": str(directory / "workflows.sqlite3"),
            "PONDER_CACHE_PATH": str(directory / "cache.sqlite3"),
            "PONDER_RESEARCH_INDEX_PATH": str(directory / "vectors.sqlite3"),
            **env,
        },
    )
    return stack, ports.gateway_http


async def bench(args: argparse.Namespace) -> None:
    """Run both stacks, alternate the loads, print the table."""
    fake = serve_fake_openai()
    receiver = _Receiver()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    otlp_port = rest.free_port()
    server.add_insecure_port(f"127.0.0.1:{otlp_port}")
    server.start()
    export = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_METRICS_EXPORTER": "none",
    }
    modes = {
        "off (default: no exporter, spans not recorded)": {},
        "on (always_on, OTLP export)": {"OTEL_TRACES_SAMPLER": "always_on", **export},
        "sampled (parentbased_traceidratio 0.1, OTLP export)": {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
            **export,
        },
    }
    results: dict[str, list[Any]] = {name: [] for name in modes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        script = rest.wrk_script(root)
        stacks = {
            name: make_stack(root, f"stack{i}", env, fake.base_url)
            for i, (name, env) in enumerate(modes.items())
        }
        for stack, _ in stacks.values():
            stack.start()
        try:
            for stack, _ in stacks.values():
                await stack.wait_ready(timeout=180)
                await stack.wait_for_log("research", "library indexed")  # no background work
            for _unused, port in stacks.values():
                _, problem = rest.warm_rest(port, 60.0)
                if problem:
                    raise SystemExit(f"REST facade not ready: {problem}")
            for _ in range(args.rounds):
                for name, (_, port) in stacks.items():
                    url = f"http://127.0.0.1:{port}{PONDER_PATH}"
                    rest.run_wrk(url, script, 2.0, args.connections)
                    results[name].append(rest.run_wrk(url, script, args.duration, args.connections))
        finally:
            for stack, _ in stacks.values():
                stack.stop()
            fake.close()
            server.stop(0)
    off, on, sampled = (
        statistics.median(r.requests_per_s for r in runs) for runs in results.values()
    )
    print(
        f"wrk -t2 -c{args.connections} -d{args.duration:g}s, POST {PONDER_PATH} (cache hit), "
        f"{args.rounds} alternating round(s), medians\n"
    )
    print("| tracing | requests/s | p50 (ms) | p99 (ms) |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        rps = statistics.median(r.requests_per_s for r in runs)
        print(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |")
    print(f"| **cost of tracing at 100%** (target ≤ 10%) | **{(1 - on / off) * 100:.1f}%** | | |")
    print(f"| **cost of tracing at 10%** | **{(1 - sampled / off) * 100:.1f}%** | | |")
    print(f"\nspans received by the OTLP stand-in: {receiver.spans:,}")


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
