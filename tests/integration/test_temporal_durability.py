"""Nothing lost, nothing paid twice (temporal engine, real processes, real dev server): a
worker killed mid-reflection, a gateway replica killed, the dev server restarted on its kept
SQLite file; each time the workflow finishes, and the model saw each finished call once."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_openai import FakeOpenAI, serve_fake_openai
from ponder_devstack.stack import StackPorts
from ponder_devstack.temporal import TemporalDevServer, Workers
from ponder_gateway.service import GatewayModule
from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings
from ponder_runtime import ServiceServer, load_settings
from ponder_runtime.health import check_health
from tests.conftest import InProcessStack, start_service
from tests.temporal_stack import worker_env


MODEL_LATENCY = 1.0  # seconds per model call: a reflection takes a few, time to kill a worker


@pytest.fixture(scope="module")
def slow_model() -> Iterator[FakeOpenAI]:
    """The fake OpenAI server, each call slowed down."""
    api = serve_fake_openai()
    api.behaviour.update(latency=MODEL_LATENCY)
    yield api
    api.close()


@dataclass
class Durable:
    """A temporal-engine gateway whose reflection calls the slow model; workers are started
    by the tests (their own task queue)."""

    gateway: ServiceServer
    workers: Workers
    env: dict[str, str]
    temporal: TemporalDevServer

    async def stub(self) -> AsyncIterator[workflow_grpc.WorkflowServiceStub]:
        """A stub on the gateway."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.gateway.port}") as channel:
            yield workflow_grpc.WorkflowServiceStub(channel)


@pytest_asyncio.fixture(scope="module")
async def durable(
    stack: InProcessStack,
    temporal_server: TemporalDevServer,
    slow_model: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Durable]:
    """Reflection on the slow model, a gateway on the temporal engine, no worker yet."""
    await temporal_server.wait_ready()
    reflection = await start_service(
        load_settings(
            ReflectionSettings,
            host="127.0.0.1",
            port=0,
            openai_api_key="sk-test",
            openai_base_url=slow_model.base_url,
            model="fake-model",
        ),
        ReflectionModule,
        InMemorySpanExporter(),
    )
    folder = tmp_path_factory.mktemp("durable")
    records = folder / "workflows.sqlite3"
    queue = f"durable-{uuid.uuid4().hex[:8]}"
    env = worker_env(stack, temporal_server, records)
    env["PONDER_REFLECTION_ADDR"] = f"127.0.0.1:{reflection.port}"
    env["PONDER_TEMPORAL_TASK_QUEUE"] = queue
    settings = stack.servers["gateway"].settings.model_copy(
        update={
            "port": 0,
            "http_port": 0,
            "engine": "temporal",
            "temporal_address": temporal_server.address,
            "temporal_task_queue": queue,
            "store_path": records,
            "reflection_addr": env["PONDER_REFLECTION_ADDR"],
            "temporal_heartbeat_timeout_seconds": 3.0,
        }
    )
    gateway = await start_service(settings, GatewayModule, InMemorySpanExporter())
    workers = Workers(env, folder)
    yield Durable(gateway, workers, env, temporal_server)
    workers.stop()
    await gateway.stop(0)
    await reflection.stop(0)


def spec(topic: str) -> pb.Workflow:
    """Two reflection iterations that cannot stop early: draft, critique, refine, critique."""
    return pb.Workflow(
        kind=pb.WORKFLOW_KIND_REFLECTION,
        topic=topic,
        parameters=pb.WorkflowParameters(
            cache_policy=pb.CACHE_POLICY_BYPASS, max_iterations=2, score_threshold=10
        ),
    )


async def until_step(
    stub: workflow_grpc.WorkflowServiceStub, name: str, message: str
) -> pb.WatchWorkflowResponse:
    """Watch until a step reports `message`."""
    async for event in stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), timeout=120):
        if event.step.message == message:
            found: pb.WatchWorkflowResponse = event
            return found
    raise AssertionError(f"{name} ended before {message!r}")


async def finished(stub: workflow_grpc.WorkflowServiceStub, name: str) -> pb.Workflow:
    """The workflow once it reaches a final state (watched to the end)."""
    last = None
    async for event in stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), timeout=120):
        last = event
    assert last is not None
    workflow: pb.Workflow = last.workflow
    return workflow


async def research_attempts(temporal: TemporalDevServer, workflow_id: str) -> list[int]:
    """The attempts of the research activity, from the workflow's Temporal history."""
    client = await Client.connect(temporal.address)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    research_ids = {
        event.event_id
        for event in history.events
        if event.activity_task_scheduled_event_attributes.activity_type.name == "ponder.research"
    }
    return [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.activity_task_started_event_attributes.scheduled_event_id in research_ids
    ]


async def test_a_worker_killed_mid_reflection_costs_no_finished_model_call(
    durable: Durable, slow_model: FakeOpenAI
):
    """kill -9 the worker while the model critiques the draft: another worker finishes the
    workflow; every finished model call was made once (only the interrupted one twice) and
    research ran once."""
    slow_model.requests.clear()
    first = durable.workers.start_one()
    async for stub in durable.stub():
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec("verbal reinforcement learning agents")),
            timeout=10,
        )
        name = created.workflow.name
        await until_step(stub, name, "iteration 1: critique started")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        durable.workers.start_one()
        workflow = await finished(stub, name)
    assert workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert len(workflow.result.iterations) == 2
    # An uninterrupted run makes 4 calls (draft, critique, refine, critique): the model
    # finished exactly those, once each; the one cut off by the kill was made again.
    assert slow_model.calls_by_status == {200: 4}
    assert slow_model.disconnects == 1
    assert len(slow_model.requests) == 5
    assert await research_attempts(durable.temporal, created.workflow.id) == [1]


async def test_a_killed_gateway_replica_leaves_its_workflows_running(
    durable: Durable, tmp_path_factory: pytest.TempPathFactory
):
    """A workflow created through a gateway process that is then kill -9'd finishes; the
    other replica reports it SUCCEEDED."""
    if not durable.workers.running():
        durable.workers.start_one()
    ports = StackPorts.free()
    env = {
        **durable.env,
        "PONDER_GATEWAY_PORT": str(ports.gateway),
        "PONDER_GATEWAY_HTTP_PORT": "-1",
        "PONDER_GATEWAY_ENGINE": "temporal",
    }
    log = tmp_path_factory.mktemp("replica") / "gateway.log"
    with log.open("wb") as out:
        replica = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ponder_gateway", env=env, stdout=out, stderr=out
        )
    try:
        address = f"127.0.0.1:{ports.gateway}"
        async with grpc.aio.insecure_channel(address) as channel:
            while await check_health(channel, timeout=1.0) != "SERVING":
                assert replica.returncode is None, log.read_text()
                await asyncio.sleep(0.2)
            created = await workflow_grpc.WorkflowServiceStub(channel).CreateWorkflow(
                pb.CreateWorkflowRequest(workflow=spec("self-refine iterative feedback")),
                timeout=10,
            )
    finally:
        replica.send_signal(signal.SIGKILL)
        await replica.wait()
    async for stub in durable.stub():
        workflow = await finished(stub, created.workflow.name)
    assert workflow.state == pb.WORKFLOW_STATE_SUCCEEDED


async def test_running_workflows_resume_after_a_temporal_restart(durable: Durable):
    """kill -9 the Temporal dev server mid-reflection and start it again on its SQLite file:
    the running workflow resumes and finishes."""
    if not durable.workers.running():
        durable.workers.start_one()
    async for stub in durable.stub():
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec("tree of thoughts deliberate search")),
            timeout=10,
        )
        name = created.workflow.name
        await until_step(stub, name, "iteration 1: critique started")
        durable.temporal.stop(signal.SIGKILL)
        durable.temporal.start(mode="ab")
        await durable.temporal.wait_ready()
        workflow = await finished(stub, name)
    assert workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert len(workflow.result.iterations) == 2
