"""Tenants and scopes over real sockets: every method enforces its scope (enumerated by the
gateway's own reflection), one tenant never sees, watches or cancels another's workflows (gRPC,
REST and the `ponder` CLI), per-tenant rate limits, and one audit line per refused call."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.principals import DEFAULT_SCOPES, METHOD_SCOPES, Scope
from tests.conftest import InProcessStack
from tests.interop.cli import ponder_async
from tests.support.gateways import gateway, rest_url
from tests.support.keys import bearer, key_line, keys_file
from tests.support.methods import OPEN_SERVICES, call_raw, served_methods


ALICE, BOB, OPS = "pk-alice-0123456789abcdef", "pk-bob-0123456789abcdef", "pk-ops-0123456789abc"
# One key per scope, and one with the two scopes the cache methods need together.
SCOPE_KEYS: dict[str, frozenset[Scope]] = {
    **{f"pk-only-{scope.value}-0123456789": frozenset({scope}) for scope in Scope},
    "pk-cache-admin-0123456789": frozenset({Scope.INTERNAL, Scope.CACHE_ADMIN}),
}


# What a gateway serves without forwarding the internal services.
PUBLIC_SERVICES = {"ponder.workflow.v1.WorkflowService", "ponder.library.v1.LibraryService"}


def tenant_keys(tmp_path: Path) -> Path:
    """alice (tenant a) and bob (tenant b) with the default scopes; ops (tenant ops) admin."""
    return keys_file(
        tmp_path / "tenants.keys",
        "# one JSON object per key",
        key_line(ALICE, key_id="alice", tenant="a", scopes=DEFAULT_SCOPES),
        key_line(BOB, key_id="bob", tenant="b", scopes=DEFAULT_SCOPES),
        key_line(OPS, key_id="ops", tenant="ops", scopes={Scope.ADMIN, Scope.WORKFLOWS_READ}),
    )


async def test_every_method_enforces_its_scope(stack: InProcessStack, tmp_path: Path) -> None:
    """With the internal services forwarded, the methods reflection lists are exactly the
    table's; a key holding one scope passes the guard of exactly the methods that need only
    it (PERMISSION_DENIED elsewhere), the cache methods need `internal` and `cache.admin`
    together; without forwarding (the default) the forwarded paths are UNIMPLEMENTED even
    for a key holding both."""
    lines = [key_line(k, key_id=f"k{i}", scopes=s) for i, (k, s) in enumerate(SCOPE_KEYS.items())]
    access = {
        "allow_anonymous": False,
        "api_keys_file": keys_file(tmp_path / "scopes.keys", *lines),
        "rate_limit_burst": 1000,
        "tenant_rate_limit_burst": 1000,
    }
    server = await gateway(stack, tmp_path, expose_internal_services=True, **access)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            methods = [m for m in await served_methods(channel) if m.service not in OPEN_SERVICES]
            assert {m.path for m in methods} == set(METHOD_SCOPES)
            for method in methods:
                for key, scopes in SCOPE_KEYS.items():
                    error = await call_raw(channel, method, bearer(key))
                    code = error.code() if error else grpc.StatusCode.OK
                    if METHOD_SCOPES[method.path] <= scopes:
                        assert code not in (
                            grpc.StatusCode.PERMISSION_DENIED,
                            grpc.StatusCode.UNAUTHENTICATED,
                        ), (method.path, scopes)
                    else:
                        assert code == grpc.StatusCode.PERMISSION_DENIED, (method.path, scopes)
                        assert error is not None
                        assert "missing scope" in (error.details() or "")
    finally:
        await server.stop(0)
    server = await gateway(stack, tmp_path, **access)  # internal services not exposed
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            listed = {m.service for m in await served_methods(channel)}
            assert listed == OPEN_SERVICES | PUBLIC_SERVICES
            forwarded = [m for m in methods if m.service not in PUBLIC_SERVICES]
            assert forwarded
            for method in forwarded:
                error = await call_raw(channel, method, bearer("pk-cache-admin-0123456789"))
                assert error is not None
                assert error.code() == grpc.StatusCode.UNIMPLEMENTED, method.path
    finally:
        await server.stop(0)


def _reflection(topic: str) -> pb.Workflow:
    return pb.Workflow(
        kind=pb.WORKFLOW_KIND_RESEARCH_REFLECTION,
        topic=topic,
        parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS),
    )


class HeldResearch(research_grpc.ResearchServiceServicer):
    """A research service whose searches wait until the test releases them (a workflow that
    stays RUNNING as long as a test needs, without guessing durations)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def SearchSources(
        self,
        request: research_pb2.SearchSourcesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> research_pb2.SearchSourcesResponse:
        """Answer nothing until released."""
        await self.release.wait()
        return research_pb2.SearchSourcesResponse()


async def test_a_tenant_never_sees_another_tenants_workflows(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """alice's running workflow: bob gets NOT_FOUND from Get, Watch and Cancel over gRPC (the
    same as a name that does not exist), 404 over REST, exit 3 from `ponder get/watch/cancel`,
    and never finds it in a list (gRPC, REST, `ponder list`); the admin key lists and gets it;
    alice gets and lists it (gRPC, REST) and cancels it (`ponder`); its record names tenant a."""
    held = HeldResearch()
    research = grpc.aio.server()
    research_grpc.add_ResearchServiceServicer_to_server(held, research)
    research_port = research.add_insecure_port("127.0.0.1:0")
    await research.start()
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_keys_file=tenant_keys(tmp_path),
        research_addr=f"127.0.0.1:{research_port}", research_timeout_seconds=300,
    )  # fmt: skip
    address = f"127.0.0.1:{server.port}"
    try:
        async with (
            grpc.aio.insecure_channel(address) as channel,
            httpx.AsyncClient(base_url=rest_url(server), timeout=30) as http,
        ):
            stub = workflow_grpc.WorkflowServiceStub(channel)
            # The workflow stays RUNNING (held in research) until alice cancels it.
            created = await stub.CreateWorkflow(
                pb.CreateWorkflowRequest(workflow=_reflection("tenant isolation probe")),
                metadata=bearer(ALICE),
                timeout=10,
            )
            name = created.workflow.name
            assert created.workflow.tenant == "a"
            for call in (
                lambda: stub.GetWorkflow(pb.GetWorkflowRequest(name=name), metadata=bearer(BOB)),
                lambda: stub.CancelWorkflow(
                    pb.CancelWorkflowRequest(name=name), metadata=bearer(BOB)
                ),
                lambda: _drain(
                    stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), metadata=bearer(BOB))
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call()
                assert caught.value.code() == grpc.StatusCode.NOT_FOUND
                assert caught.value.details() == f"{name} does not exist"
            listed = await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(BOB))
            assert name not in [w.name for w in listed.workflows]
            await _over_rest(http, name)
            await _over_cli(address, name)
            admin = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), metadata=bearer(OPS))
            assert admin.workflow.tenant == "a"
            mine = await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(ALICE))
            assert name in [w.name for w in mine.workflows]
            ran = await ponder_async(
                "cancel", name.removeprefix("workflows/"), "-a", address,
                env={"PONDER_API_KEY": ALICE},
            )  # fmt: skip
            assert ran.code == 0, ran
            got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), metadata=bearer(ALICE))
            assert got.workflow.state == pb.WORKFLOW_STATE_CANCELLED
    finally:
        held.release.set()
        await server.stop(0)
        await research.stop(0)


async def _over_rest(http: httpx.AsyncClient, name: str) -> None:
    """Over REST bob gets 404 for alice's workflow (get, watch, cancel) and does not list it;
    alice gets and lists it."""
    bob = {"authorization": f"Bearer {BOB}"}
    for verb, path in (
        ("GET", f"/v1/{name}"),
        ("GET", f"/v1/{name}:watch"),
        ("POST", f"/v1/{name}:cancel"),
    ):
        reply = await http.request(verb, path, headers=bob, json={})
        assert reply.status_code == 404, (verb, path, reply.text)
    listed = (await http.get("/v1/workflows", headers=bob)).json()
    assert name not in [w["name"] for w in listed["workflows"]]
    alice = {"authorization": f"Bearer {ALICE}"}
    mine = await http.get(f"/v1/{name}", headers=alice)
    assert mine.status_code == 200, mine.text
    assert mine.json()["workflow"]["tenant"] == "a"
    listed = (await http.get("/v1/workflows", headers=alice)).json()
    assert name in [w["name"] for w in listed["workflows"]]


async def _over_cli(address: str, name: str) -> None:
    """With `ponder`, bob's get, watch and cancel of alice's workflow exit 3 (not found) and
    his list lacks it; the admin's list has it."""
    as_bob = {"PONDER_API_KEY": BOB}
    for command in ("get", "watch", "cancel"):
        ran = await ponder_async(
            command, name.removeprefix("workflows/"), "-a", address, env=as_bob
        )
        assert ran.code == 3, (command, ran)
    ran = await ponder_async("list", "--json", "-a", address, env=as_bob)
    assert ran.code == 0, ran
    assert name not in ran.out
    ran = await ponder_async("list", "--json", "-a", address, env={"PONDER_API_KEY": OPS})
    assert name in ran.out


async def _drain(call: grpc.aio.UnaryStreamCall[Any, Any]) -> None:
    async for _ in call:
        pass


async def test_identical_runs_of_two_tenants_are_not_replayed_across(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """The same RunReflectionWorkflow request from alice then bob (replay on): bob gets a
    workflow of his own (tenant b, another name), not alice's answer replayed."""
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_keys_file=tenant_keys(tmp_path)
    )
    request = pb.RunReflectionWorkflowRequest(topic="self-reflection for agents, per tenant")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            first = await stub.RunReflectionWorkflow(request, metadata=bearer(ALICE), timeout=60)
            again = await stub.RunReflectionWorkflow(request, metadata=bearer(ALICE), timeout=60)
            other = await stub.RunReflectionWorkflow(request, metadata=bearer(BOB), timeout=60)
            assert again.workflow.name == first.workflow.name  # replayed within a tenant
            assert other.workflow.name != first.workflow.name
            assert (first.workflow.tenant, other.workflow.tenant) == ("a", "b")
    finally:
        await server.stop(0)


async def test_rate_limits_hold_per_tenant_as_well_as_per_key(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """Two keys of tenant a share the tenant's budget (3): the fourth call, whichever key, is
    RESOURCE_EXHAUSTED naming tenant:a; bob (tenant b) still passes."""
    extra = "pk-alice-second-0123456789"
    keys = keys_file(
        tmp_path / "keys",
        key_line(ALICE, key_id="alice", tenant="a", scopes=DEFAULT_SCOPES),
        key_line(extra, key_id="alice-2", tenant="a", scopes=DEFAULT_SCOPES),
        key_line(BOB, key_id="bob", tenant="b", scopes=DEFAULT_SCOPES),
    )
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_keys_file=keys,
        rate_limit_per_second=0.001, rate_limit_burst=10,
        tenant_rate_limit_per_second=0.001, tenant_rate_limit_burst=3,
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            for key in (ALICE, extra, ALICE):
                await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(key))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(extra))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "tenant:a" in (caught.value.details() or "")
            await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(BOB))
    finally:
        await server.stop(0)


async def test_a_refused_call_writes_one_audit_line_without_the_key(
    stack: InProcessStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A call lacking its scope (gRPC) and one with a wrong key (REST) each write exactly one
    `access denied` line on ponder_gateway.audit naming the principal, the method, the reason
    and the call's trace id; neither the key nor a prefix of it appears in the log."""
    caplog.set_level(logging.INFO, logger="ponder_gateway.audit")
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_keys_file=tenant_keys(tmp_path)
    )
    wrong = "pk-wrong-audit-0123456789"
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
            httpx.AsyncClient(base_url=rest_url(server), timeout=30) as http,
        ):
            stub = workflow_grpc.WorkflowServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateWorkflow(
                    pb.CreateWorkflowRequest(workflow=_reflection("audit")), metadata=bearer(OPS)
                )
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
            reply = await http.get("/v1/workflows", headers={"authorization": f"Bearer {wrong}"})
            assert reply.status_code == 401
    finally:
        await server.stop(0)
    lines = [r for r in caplog.records if r.name == "ponder_gateway.audit"]
    assert [r.getMessage() for r in lines] == ["access denied", "access denied"]
    denied, unauthenticated = (vars(r) for r in lines)
    assert denied["principal"] == "ops"
    assert denied["tenant"] == "ops"
    assert denied["rpc_method"] == "/ponder.workflow.v1.WorkflowService/CreateWorkflow"
    assert denied["reason"] == "missing scope workflows.run"
    assert unauthenticated["principal"] == "unauthenticated"
    assert unauthenticated["rpc_method"] == "/ponder.workflow.v1.WorkflowService/ListWorkflows"
    assert unauthenticated["reason"] == "the API key is not valid"
    for record in (denied, unauthenticated):
        assert len(record["trace_id"]) == 32
        assert int(record["trace_id"], 16) != 0
    text = caplog.text + json.dumps([str(vars(r)) for r in lines])
    for secret in (OPS, wrong, OPS[:9], wrong[:9]):
        assert secret not in text


async def test_workflow_budgets_hold_per_tenant(stack: InProcessStack, tmp_path: Path) -> None:
    """With a budget of one workflow per tenant: while alice's workflow runs (held in
    research), her second one, from another key of her tenant, is RESOURCE_EXHAUSTED naming
    the tenant budget; bob's starts; once alice's is cancelled she can start again."""
    extra = "pk-alice-second-0123456789"
    keys = keys_file(
        tmp_path / "keys",
        key_line(ALICE, key_id="alice", tenant="a", scopes=DEFAULT_SCOPES),
        key_line(extra, key_id="alice-2", tenant="a", scopes=DEFAULT_SCOPES),
        key_line(BOB, key_id="bob", tenant="b", scopes=DEFAULT_SCOPES),
    )
    held = HeldResearch()
    research = grpc.aio.server()
    research_grpc.add_ResearchServiceServicer_to_server(held, research)
    research_port = research.add_insecure_port("127.0.0.1:0")
    await research.start()
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_keys_file=keys, max_workflows_per_tenant=1,
        research_addr=f"127.0.0.1:{research_port}", research_timeout_seconds=300,
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)

            async def create(key: str) -> pb.Workflow:
                request = pb.CreateWorkflowRequest(workflow=_reflection("budgets"))
                reply: pb.CreateWorkflowResponse = await stub.CreateWorkflow(
                    request, metadata=bearer(key), timeout=10
                )
                return reply.workflow

            first = await create(ALICE)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await create(extra)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "this tenant" in (caught.value.details() or "")
            bobs = await create(BOB)
            for name, key in ((first.name, ALICE), (bobs.name, BOB)):
                await stub.CancelWorkflow(
                    pb.CancelWorkflowRequest(name=name), metadata=bearer(key), timeout=10
                )
            again = await create(extra)
            assert again.tenant == "a"
            await stub.CancelWorkflow(
                pb.CancelWorkflowRequest(name=again.name), metadata=bearer(ALICE), timeout=10
            )
    finally:
        held.release.set()
        await server.stop(0)
        await research.stop(0)
