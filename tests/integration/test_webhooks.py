"""Completion webhooks end to end: a gateway of its own (webhooks to 127.0.0.1 allowed
explicitly, tiny backoffs) in front of the in-process services, a real receiver that verifies
signatures and fails the first deliveries; over gRPC, REST, the `ponder` CLI and the Node
client; refused destinations and secrets; and the Temporal engine."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.service import GatewayModule
from ponder_runtime import ServiceServer
from tests.conftest import InProcessStack, start_service
from tests.interop.cli import ponder_async
from tests.support.gateways import gateway, rest_url
from tests.support.grpc_errors import bad_request_fields, violations
from tests.temporal_stack import TemporalStack
from tests.webhook_receiver import Receiver


SECRET = "whsec-integration-0123456789"
ROOT = Path(__file__).resolve().parents[2]
WEBHOOKS: dict[str, Any] = {
    "webhook_secrets": {"hooks": SECRET, "someone-else:theirs": SECRET},
    "webhook_allowed_networks": ["127.0.0.1/32"],  # the receiver: allowed explicitly
    "webhook_initial_backoff_seconds": 0.01,
    "webhook_max_backoff_seconds": 0.02,
    "rate_limit_burst": 1000,
}
DELIVERY_OVER = (pb.NOTIFICATION_DELIVERY_STATE_DELIVERED, pb.NOTIFICATION_DELIVERY_STATE_FAILED)


@pytest.fixture
async def hooked(stack: InProcessStack, tmp_path: Path) -> AsyncIterator[ServiceServer]:
    """A local-engine gateway that may send webhooks to 127.0.0.1, signed with `hooks`."""
    server = await gateway(stack, tmp_path, **WEBHOOKS)
    yield server
    await server.stop(0)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver failing its first two deliveries with 500."""
    hooks = Receiver(SECRET, fail_first=2).start()
    yield hooks
    hooks.close()


def spec(receiver: Receiver, kind: int = pb.WORKFLOW_KIND_RESEARCH) -> pb.Workflow:
    """A workflow (cache bypassed) with a webhook to the receiver."""
    return pb.Workflow(
        kind=kind,  # type: ignore[arg-type]
        topic=f"dense passage retrieval ({uuid.uuid4().hex[:8]})",
        parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS),
        notification=pb.NotificationTarget(url=receiver.url, secret_name="hooks"),
    )


async def delivered(stub: workflow_grpc.WorkflowServiceStub, name: str) -> pb.Workflow:
    """GetWorkflow until the workflow's webhook is delivered or given up (60 s at most)."""
    for _ in range(1200):
        reply: pb.GetWorkflowResponse = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name))
        workflow = reply.workflow
        if workflow.notification_delivery.state in DELIVERY_OVER:
            return workflow
        await asyncio.sleep(0.05)
    state = pb.WorkflowState.Name(workflow.state)
    pytest.fail(f"{name} ({state}): its webhook is still {workflow.notification_delivery}")


def notifier(server: ServiceServer) -> Any:
    """The gateway's webhook notifier."""
    module = server.service
    assert isinstance(module, GatewayModule)
    return module.notifier


async def test_created_workflow_is_delivered_once_after_failures(
    hooked: ServiceServer, receiver: Receiver
) -> None:
    """gRPC CreateWorkflow with a target: two 500s, then one signed delivery of the same JSON
    REST's GET returns (minus the delivery state); GetWorkflow says DELIVERED after 3
    attempts; a sweep afterwards sends nothing more."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hooked.port}") as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        created = await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(receiver)))
        workflow = created.workflow
        assert workflow.notification.url == receiver.url
        assert workflow.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_PENDING
        final = await delivered(stub, workflow.name)
        assert await notifier(hooked).sweep() == 0
    delivery = final.notification_delivery
    assert delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (3, 204, "")
    assert [d.status for d in receiver.deliveries] == [500, 500, 204]
    assert all(d.verified for d in receiver.deliveries)
    assert {d.headers["Ponder-Event-Id"] for d in receiver.deliveries} == {delivery.event_id}
    assert receiver.deliveries[-1].headers["Ponder-Event-Type"] == "workflow.succeeded"
    async with httpx.AsyncClient(base_url=rest_url(hooked), timeout=30) as http:
        rest = (await http.get(f"/v1/{workflow.name}")).json()
    assert rest["workflow"]["notificationDelivery"]["state"] == (
        "NOTIFICATION_DELIVERY_STATE_DELIVERED"
    )
    del rest["workflow"]["notificationDelivery"]
    assert receiver.accepted[0].json == rest


async def test_refused_targets_name_the_field(
    stack: InProcessStack, hooked: ServiceServer, receiver: Receiver
) -> None:
    """Loopback (when not allowed), link-local metadata, private, IPv6 loopback and a name
    resolving to loopback are INVALID_ARGUMENT naming workflow.notification.url (Create and
    RunWorkflow; `notification.url` for RunResearchWorkflow); unknown secrets and another
    tenant's secret name workflow.notification.secret_name; nothing is created or sent."""
    refused = {
        stack.address("gateway"): [receiver.url, "http://localhost:9/hook"],  # defaults
        f"127.0.0.1:{hooked.port}": [
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/hook",
            "http://[::1]:9/hook",
            "http://127.0.0.2:9/hook",
            "ftp://127.0.0.1/hook",
        ],
    }
    for address, urls in refused.items():
        async with grpc.aio.insecure_channel(address) as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            for url in urls:
                workflow = spec(receiver)
                workflow.notification.url = url
                legacy = pb.RunResearchWorkflowRequest(
                    topic=workflow.topic, notification=workflow.notification
                )
                for call, field in (
                    (stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow)), "workflow."),
                    (stub.RunWorkflow(pb.RunWorkflowRequest(workflow=workflow)), "workflow."),
                    (stub.RunResearchWorkflow(legacy), ""),
                ):
                    with pytest.raises(grpc.aio.AioRpcError) as error:
                        await call
                    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url
                    assert f"{field}notification.url" in bad_request_fields(error.value), url
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hooked.port}") as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        for secret in ("nope", "theirs", "someone-else:theirs", ""):
            workflow = spec(receiver)
            workflow.notification.secret_name = secret
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow))
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bad_request_fields(error.value) == {"workflow.notification.secret_name"}
    assert receiver.deliveries == []


async def test_rest_create_and_refusal(hooked: ServiceServer, receiver: Receiver) -> None:
    """Over REST: POST /v1/workflows with `notification` is delivered (the GET shows it); a
    refused destination is 400 naming the field; the OpenAPI document describes the target."""
    async with httpx.AsyncClient(base_url=rest_url(hooked), timeout=30) as http:
        body = {
            "kind": "WORKFLOW_KIND_RESEARCH",
            "topic": "retrieval-augmented generation",
            "parameters": {"cachePolicy": "CACHE_POLICY_BYPASS"},
            "notification": {"url": receiver.url, "secretName": "hooks"},
        }
        reply = await http.post("/v1/workflows", json=body)
        assert reply.status_code == 200, reply.text
        name = reply.json()["workflow"]["name"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{hooked.port}") as channel:
            await delivered(workflow_grpc.WorkflowServiceStub(channel), name)
        got = (await http.get(f"/v1/{name}")).json()["workflow"]["notificationDelivery"]
        assert got["state"] == "NOTIFICATION_DELIVERY_STATE_DELIVERED"
        assert got["attempts"] == 3
        body["notification"] = {"url": "http://169.254.169.254/", "secretName": "hooks"}
        refused = await http.post("/v1/workflows", json=body)
        assert refused.status_code == 400
        assert "workflow.notification.url" in violations(refused.json())
        document = (await http.get("/openapi.json")).json()
    schemas = json.dumps(document)
    assert "NotificationTarget" in schemas
    assert "secretName" in schemas
    assert len(receiver.accepted) == 1


async def test_a_cancelled_workflow_notifies(hooked: ServiceServer, receiver: Receiver) -> None:
    """Cancelling a running workflow sends `workflow.cancelled` with the CANCELLED workflow."""
    receiver.fail_first = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hooked.port}") as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        workflow = spec(receiver, pb.WORKFLOW_KIND_RESEARCH_REFLECTION)
        created = await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow))
        await stub.CancelWorkflow(pb.CancelWorkflowRequest(name=created.workflow.name))
        final = await delivered(stub, created.workflow.name)
    assert final.state == pb.WORKFLOW_STATE_CANCELLED
    assert final.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    (only,) = receiver.deliveries
    assert only.headers["Ponder-Event-Type"] == "workflow.cancelled"
    assert only.json["workflow"]["state"] == "WORKFLOW_STATE_CANCELLED"


async def test_cli_and_node_client_send_targets(hooked: ServiceServer, receiver: Receiver) -> None:
    """`ponder run --notify-url --notify-secret` (a synchronous run) and the Node client's
    --notify-url each get exactly one accepted delivery, `ponder get` shows it; a refused one
    exits 2 naming the field."""
    address = f"127.0.0.1:{hooked.port}"
    ran = await ponder_async(
        "run", "research", "dense retrieval", "--cache", "bypass", "--json",
        "--notify-url", receiver.url, "--notify-secret", "hooks", "--address", address,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    name = json.loads(ran.out.splitlines()[-1])["name"]
    async with grpc.aio.insecure_channel(address) as channel:
        final = await delivered(workflow_grpc.WorkflowServiceStub(channel), name)
    assert final.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    shown = await ponder_async("get", name, "--address", address)
    assert shown.code == 0, shown.err
    assert f"webhook to {receiver.url}: delivered after 3 attempts" in shown.out
    refused = await ponder_async(
        "run", "research", "dense retrieval", "--notify-url", "http://10.0.0.1/",
        "--notify-secret", "hooks", "--address", address,
    )  # fmt: skip
    assert refused.code == 2
    assert "workflow.notification.url" in refused.err
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (npm installs the client's packages)"
    process = await asyncio.create_subprocess_exec(
        node, str(ROOT / "clients" / "node" / "ponder-client.mjs"), "--address", address,
        "--notify-url", receiver.url, "--notify-secret", "hooks", "dense retrieval",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, out.decode() + err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    webhook = summary["watched"]["webhook"]
    assert webhook["state"] == "NOTIFICATION_DELIVERY_STATE_DELIVERED"
    assert len(receiver.accepted) == 2
    assert receiver.accepted[1].headers["Ponder-Event-Id"] == webhook["eventId"]


async def test_on_the_temporal_engine(temporal_stack: TemporalStack, receiver: Receiver) -> None:
    """A workflow run by a Temporal worker: the gateway sees it end and delivers its webhook
    once (after two 500s); GetWorkflow shows the delivery state the gateway recorded."""
    secrets = {name: SecretStr(secret) for name, secret in WEBHOOKS["webhook_secrets"].items()}
    update = {**WEBHOOKS, "port": 0, "webhook_secrets": secrets}  # model_copy: validated types
    settings = temporal_stack.gateway.settings.model_copy(update=update)
    server = await start_service(settings, GatewayModule, InMemorySpanExporter())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            created = await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(receiver)))
            final = await delivered(stub, created.workflow.name)
    finally:
        await server.stop(0)
    assert final.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert final.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    assert final.notification_delivery.attempts == 3
    assert [d.status for d in receiver.deliveries] == [500, 500, 204]
    assert receiver.accepted[0].json["workflow"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
