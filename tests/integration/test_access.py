"""Gateway access control: API keys, per-caller rate limits and the workflow capacity."""

from __future__ import annotations

import logging

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts
from ponder_devstack.fake_apis import FakeApi
from ponder_gateway.access import hash_key
from tests.support.fakes import behaving
from tests.support.gateways import gateway, rest_url
from tests.support.keys import KEY, bearer


async def test_api_keys_are_required_and_checked(stack, tmp_path, caplog):
    """Without anonymous access: no key and a wrong key are UNAUTHENTICATED, the right key
    passes (reaching NOT_FOUND for an unknown workflow); health stays open; the key never
    reaches the logs."""
    caplog.set_level(logging.DEBUG)
    server = await gateway(stack, tmp_path, allow_anonymous=False, api_key_hashes=[hash_key(KEY)])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            get = pb.GetWorkflowRequest(name="workflows/nothing-here")
            for metadata in ((), bearer("pk-wrong"), (("authorization", KEY),)):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetWorkflow(get, metadata=metadata, timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetWorkflow(get, metadata=bearer(KEY), timeout=5)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(0)
    assert KEY not in caplog.text


async def test_two_authorization_headers_are_refused(stack, tmp_path):
    """A call with two authorization headers is UNAUTHENTICATED, whatever keys they carry (one
    rule for which header counts: the key check and the per-key cache scope read the same
    one), on gRPC and REST; one valid header passes."""
    other = "pk-other-key"
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_key_hashes=[hash_key(KEY), hash_key(other)]
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            get = pb.GetWorkflowRequest(name="workflows/nothing-here")
            for metadata in (
                (*bearer(KEY), *bearer(other)),
                (*bearer("pk-wrong"), *bearer(KEY)),
                (*bearer(KEY), *bearer(KEY)),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetWorkflow(get, metadata=metadata, timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "one authorization header, not 2" in (caught.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetWorkflow(get, metadata=bearer(other), timeout=5)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        async with httpx.AsyncClient(base_url=rest_url(server)) as client:
            twice = httpx.Headers(
                [("authorization", f"Bearer {KEY}"), ("authorization", f"Bearer {other}")]
            )
            reply = await client.get("/v1/workflows/nothing-here", headers=twice)
            assert reply.status_code == 401
            once = await client.get(
                "/v1/workflows/nothing-here", headers={"authorization": f"Bearer {KEY}"}
            )
            assert once.status_code == 404
    finally:
        await server.stop(0)


async def test_keys_from_a_file_and_anonymous_access(stack, tmp_path):
    """Hashes can come from a file; with anonymous access on, no key passes but a wrong key
    is still refused."""
    keys = tmp_path / "keys"
    keys.write_text(f"# team keys\nalice:{hash_key(KEY)}\n")
    server = await gateway(stack, tmp_path, allow_anonymous=True, api_keys_file=keys)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            get = pb.GetWorkflowRequest(name="workflows/nothing-here")
            for metadata in ((), bearer(KEY)):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetWorkflow(get, metadata=metadata, timeout=5)
                assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetWorkflow(get, metadata=bearer("pk-wrong"), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(0)


async def test_rate_limit_per_caller(stack, tmp_path):
    """Beyond the burst a caller gets RESOURCE_EXHAUSTED with RetryInfo; another caller (a
    different key) still has its own budget."""
    other = "pk-other-key"
    server = await gateway(
        stack, tmp_path, api_key_hashes=[hash_key(KEY), hash_key(other)],
        rate_limit_per_second=0.5, rate_limit_burst=2,
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            get = pb.GetWorkflowRequest(name="workflows/nothing-here")
            codes = []
            for _ in range(3):
                try:
                    await stub.GetWorkflow(get, metadata=bearer(KEY), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    codes.append(exc.code())
                    last = exc
            assert codes == [grpc.StatusCode.NOT_FOUND] * 2 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
            status = rpc_status.from_call(last)
            assert status is not None
            retry = error_details_pb2.RetryInfo()
            assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
            assert 0 < retry.retry_delay.ToNanoseconds() / 1e9 <= 2.0
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetWorkflow(get, metadata=bearer(other), timeout=5)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)


async def test_workflows_beyond_capacity_are_refused(stack, tmp_path, fake_arxiv: FakeApi):
    """With one running slot and no queue, a second workflow while the first runs is
    RESOURCE_EXHAUSTED instead of piling up."""
    server = await gateway(stack, tmp_path, max_running_workflows=1, max_queued_workflows=0)
    workflow = pb.Workflow(
        kind=pb.WORKFLOW_KIND_RESEARCH_REFLECTION,
        topic="speculative decoding capacity",
        parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            with behaving(fake_arxiv, latency=1.5):
                first = await stub.CreateWorkflow(
                    pb.CreateWorkflowRequest(workflow=workflow), timeout=10
                )
                other = pb.Workflow()  # another topic: an identical one would join the first
                other.CopyFrom(workflow)
                other.topic = "speculative decoding capacity, a second question"
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=other), timeout=10)
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                events = [
                    e
                    async for e in stub.WatchWorkflow(
                        pb.WatchWorkflowRequest(name=first.workflow.name), timeout=30
                    )
                ]
            assert events[-1].workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
            again = await stub.CreateWorkflow(
                pb.CreateWorkflowRequest(workflow=workflow), timeout=10
            )
            assert again.workflow.state == pb.WORKFLOW_STATE_PENDING
    finally:
        await server.stop(5)


async def test_two_gateway_processes_share_records_and_rate_limits(stack, tmp_path, redis_url):
    """Two gateway processes on one Redis: a workflow run through one is got, listed and
    watched through the other, and one caller's rate limit holds across both."""
    env = {
        "PONDER_GATEWAY_REDIS_URL": redis_url,
        "PONDER_GATEWAY_API_KEY_HASHES": f'["{hash_key(KEY)}"]',
        "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0.01",  # no refill within the test
        "PONDER_GATEWAY_RATE_LIMIT_BURST": "6",
        "PONDER_RESEARCH_ADDR": stack.address("research"),
        "PONDER_EMBEDDING_ADDR": stack.address("embedding"),
        "PONDER_REFLECTION_ADDR": stack.address("reflection"),
    }
    gateways = []
    for index in range(2):
        process = Stack(ports=StackPorts.free(), log_dir=tmp_path / str(index), extra_env=env)
        process.services = [s for s in process.services if s.name == "gateway"]
        process.start()
        gateways.append(process)
    try:
        for process in gateways:
            await process.wait_ready(timeout=60)
        first, second = (g.services[0].address for g in gateways)
        async with (
            grpc.aio.insecure_channel(first) as a,
            grpc.aio.insecure_channel(second) as b,
        ):
            one, two = workflow_grpc.WorkflowServiceStub(a), workflow_grpc.WorkflowServiceStub(b)
            done = await one.RunWorkflow(
                pb.RunWorkflowRequest(
                    workflow=pb.Workflow(
                        kind=pb.WORKFLOW_KIND_REFLECTION,
                        topic="sentence embeddings shared",
                        parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS),
                    )
                ),
                metadata=bearer(KEY),
                timeout=30,
            )
            name = done.workflow.name
            got = await two.GetWorkflow(
                pb.GetWorkflowRequest(name=name), metadata=bearer(KEY), timeout=10
            )
            assert got.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
            assert got.workflow.result.text == done.workflow.result.text
            listed = await two.ListWorkflows(
                pb.ListWorkflowsRequest(page_size=5), metadata=bearer(KEY), timeout=10
            )
            assert name in [w.name for w in listed.workflows]
            created = await one.CreateWorkflow(
                pb.CreateWorkflowRequest(
                    workflow=pb.Workflow(
                        kind=pb.WORKFLOW_KIND_REFLECTION,
                        topic="sentence embeddings watched elsewhere",
                        parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS),
                    )
                ),
                metadata=bearer(KEY),
                timeout=10,
            )
            events = [
                event
                async for event in two.WatchWorkflow(
                    pb.WatchWorkflowRequest(name=created.workflow.name),
                    metadata=bearer(KEY),
                    timeout=30,
                )
            ]
            assert events[0].event_type == pb.WORKFLOW_EVENT_TYPE_SNAPSHOT
            assert events[-1].event_type == pb.WORKFLOW_EVENT_TYPE_FINISHED
            assert events[-1].workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
            # The caller has now spent 5 of its 6 tokens, across two processes.
            codes = []
            for stub in (one, two):
                try:
                    await stub.GetWorkflow(
                        pb.GetWorkflowRequest(name=name), metadata=bearer(KEY), timeout=10
                    )
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as exc:
                    codes.append(exc.code())
            assert codes == [grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED]
    finally:
        for process in gateways:
            assert process.stop() == {"gateway": 0}


async def test_rest_calls_pass_the_same_guard(stack, tmp_path, caplog):
    """Over REST: no key 401, a wrong key 401, the right key reaches the method (404 for an
    unknown workflow); /healthz stays open; the key is never logged."""
    caplog.set_level(logging.DEBUG)
    server = await gateway(stack, tmp_path, allow_anonymous=False, api_key_hashes=[hash_key(KEY)])
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http:
            for headers in ({}, {"authorization": "Bearer pk-wrong"}, {"authorization": KEY}):
                reply = await http.get("/v1/workflows/nothing-here", headers=headers)
                assert reply.status_code == 401
                assert reply.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
            ok = await http.get(
                "/v1/workflows/nothing-here", headers={"authorization": f"Bearer {KEY}"}
            )
            assert ok.status_code == 404
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await server.stop(0)
    assert KEY not in caplog.text


async def test_rest_and_grpc_share_one_rate_limit(stack, tmp_path):
    """One caller's budget is spent by gRPC and REST calls alike; the REST 429 carries
    Retry-After from the RetryInfo, and the same body details as gRPC."""
    server = await gateway(
        stack, tmp_path, api_key_hashes=[hash_key(KEY)], rate_limit_per_second=0.5,
        rate_limit_burst=2,
    )  # fmt: skip
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
            httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http,
        ):
            stub = workflow_grpc.WorkflowServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetWorkflow(
                    pb.GetWorkflowRequest(name="workflows/nothing-here"), metadata=bearer(KEY)
                )
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            auth = {"AUTHORIZATION": f"Bearer {KEY}"}  # header case changes nothing
            first = await http.get("/v1/workflows/nothing-here", headers=auth)
            assert first.status_code == 404
            limited = await http.get("/v1/workflows/nothing-here", headers=auth)
            assert limited.status_code == 429
            assert 1 <= int(limited.headers["retry-after"]) <= 2
            types = [d["@type"] for d in limited.json()["details"]]
            assert "type.googleapis.com/google.rpc.RetryInfo" in types
    finally:
        await server.stop(0)
