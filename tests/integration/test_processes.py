"""Service processes: readiness, bad settings, and draining on SIGTERM (real processes)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_devstack import Stack, StackPorts
from ponder_runtime.health import check_health


SERVICES = ["gateway", "research", "reflection", "embedding"]


async def test_every_service_reports_serving(process_stack: Stack):
    """Each process answers grpc.health.v1 SERVING, overall and for its own service."""
    for service in process_stack.services:
        async with grpc.aio.insecure_channel(service.address) as channel:
            assert await check_health(channel) == "SERVING", service.name
            full_name = f"ponder.{service.name}.v1.{service.name.capitalize()}Service"
            if service.name == "gateway":
                full_name = "ponder.workflow.v1.WorkflowService"
            assert await check_health(channel, full_name) == "SERVING", full_name


@pytest.mark.parametrize(
    ("module", "variable", "value"),
    [
        ("ponder_research", "PONDER_RESEARCH_PORT", "not-a-port"),
        ("ponder_gateway", "PONDER_GATEWAY_PORT", "99999"),
        ("ponder_reflection", "PONDER_LOG_LEVEL", "LOUD"),
        ("ponder_gateway", "PONDER_SHUTDOWN_GRACE_SECONDS", "soon"),
    ],
    ids=["non-numeric-port", "port-out-of-range", "unknown-log-level", "non-numeric-grace"],
)
def test_a_bad_setting_exits_non_zero_naming_it(module, variable, value):
    """A malformed setting stops the process at start with exit 2 and the variable's name."""
    done = subprocess.run(
        [sys.executable, "-m", module],
        env={**_base_env(), variable: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert variable in done.stderr
    assert repr(value) in done.stderr


def _base_env() -> dict[str, str]:
    import os

    return {key: val for key, val in os.environ.items() if not key.startswith("PONDER_")}


async def test_sigterm_lets_the_in_flight_call_finish_then_exits_zero(tmp_path):
    """SIGTERM during a long EmbedTexts call: health turns NOT_SERVING, the call still
    completes with every vector, and the process exits 0."""
    # A generous grace: on a loaded CI machine the batch may take longer than the default 10 s.
    stack = Stack(
        ports=StackPorts.free(),
        log_dir=tmp_path,
        extra_env={
            "PONDER_SHUTDOWN_GRACE_SECONDS": "120",
            "PONDER_CACHE_PATH": str(tmp_path / "cache.sqlite3"),
        },
    )
    embedding = next(s for s in stack.services if s.name == "embedding")
    stack.services = [embedding]
    stack.start()
    try:
        await stack.wait_ready(timeout=120)
        assert embedding.process is not None
        async with grpc.aio.insecure_channel(embedding.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            texts = [
                f"sentence number {i} about retrieval and reflection " * 20 for i in range(256)
            ]
            stub = embedding_grpc.EmbeddingServiceStub(channel)
            started = time.monotonic()
            call = stub.EmbedTexts(
                embedding_pb2.EmbedTextsRequest(texts=texts),
                metadata=stack.internal_metadata(),
                timeout=120,
            )
            await asyncio.sleep(0.5)  # the batch is now being encoded (takes seconds on CPU)
            embedding.process.send_signal(signal.SIGTERM)
            update = await watch.read()
            assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
            reply = await call
            elapsed = time.monotonic() - started
        assert len(reply.embeddings) == 256
        assert reply.dimensions == 384
        assert elapsed > 0.5, "the call finished before SIGTERM: the test proved nothing"
        assert await asyncio.to_thread(embedding.process.wait, 30) == 0
    finally:
        stack.stop()


async def test_gateway_log_line_carries_the_workflow_trace_id(process_stack: Stack):
    """The gateway's JSON log line for a workflow carries the same trace id as the reply."""
    from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
    from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc

    gateway = next(s for s in process_stack.services if s.name == "gateway")
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        reply = await workflow_grpc.WorkflowServiceStub(channel).RunReflectionWorkflow(
            workflow_pb2.RunReflectionWorkflowRequest(topic="sentence embeddings"), timeout=60
        )
    workflow = reply.workflow
    lines = [
        json.loads(line)
        for line in gateway.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    mine = [line for line in lines if line.get("workflow") == workflow.name]
    assert mine, "no log line names the workflow"
    assert {line["trace_id"] for line in mine} == {workflow.trace_id}
    assert len(workflow.trace_id) == 32


async def test_health_answers_within_100ms_during_a_2000_text_batch(process_stack: Stack):
    """While the embedding process encodes 2,000 texts, every health check answers in
    under 100 ms (the model runs off the event loop, in bounded batches)."""
    embedding = next(s for s in process_stack.services if s.name == "embedding")
    texts = [f"passage {i} on dense retrieval, reranking and reflection " * 3 for i in range(2000)]
    async with grpc.aio.insecure_channel(embedding.address) as channel:
        stub = embedding_grpc.EmbeddingServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        call = asyncio.ensure_future(
            stub.EmbedTexts(
                embedding_pb2.EmbedTextsRequest(texts=texts),
                metadata=process_stack.internal_metadata(),
                timeout=600,
            )
        )
        latencies = []
        while not call.done():
            started = time.perf_counter()
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            latencies.append(time.perf_counter() - started)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            await asyncio.sleep(0.05)
        assert len((await call).embeddings) == 2000
    assert len(latencies) >= 10, "the batch finished too fast to prove anything"
    assert max(latencies) < 0.1, f"slowest health check {max(latencies) * 1000:.0f} ms"


async def test_gateway_process_serves_rest_and_logs_each_request(process_stack: Stack):
    """The gateway process answers REST on its HTTP port: a workflow, /healthz, and one JSON
    access-log line per request carrying the request id and the trace id of the reply."""
    import httpx

    gateway = next(s for s in process_stack.services if s.name == "gateway")
    base = f"http://127.0.0.1:{process_stack.ports.gateway_http}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        assert (await http.get("/healthz")).json() == {"status": "SERVING"}
        reply = await http.post(
            "/v1/workflows/reflection",
            # A topic of its own: a new workflow, not a replay of another test's answer.
            json={"topic": f"sentence embeddings {uuid.uuid4().hex[:8]}"},
            headers={"x-request-id": "process-test-1"},
        )
    assert reply.status_code == 200
    trace_id = reply.json()["workflow"]["traceId"]
    assert reply.headers["x-trace-id"] == trace_id
    access: list[dict[str, object]] = []
    for _ in range(50):  # the line is written once the response is sent: poll for it
        lines = [
            json.loads(line)
            for line in gateway.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        access = [line for line in lines if line.get("request_id") == "process-test-1"]
        if access:
            break
        await asyncio.sleep(0.1)
    assert len(access) == 1
    assert access[0]["http_status"] == 200
    assert access[0]["trace_id"] == trace_id


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_a_service_runs_and_drains_on_either_loop(tmp_path, loop: str):
    """PONDER_EVENT_LOOP: the reflection service serves gRPC on uvloop's loop (the default)
    and on asyncio's, and drains to exit 0 on SIGTERM."""
    port = StackPorts.free().reflection
    env = {**_base_env(), "PONDER_EVENT_LOOP": loop, "PONDER_REFLECTION_PORT": str(port)}
    with (tmp_path / "reflection.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ponder_reflection", env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            status = ""
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                while time.monotonic() < deadline and status != "SERVING":
                    status = await check_health(channel, timeout=1)
                    await asyncio.sleep(0.2)
            assert status == "SERVING"
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    lines = (tmp_path / "reflection.log").read_text().splitlines()
    assert any(json.loads(line).get("message") == "stopped" for line in lines if line[:1] == "{")
