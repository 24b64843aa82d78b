"""Long-running workflows and the semantic cache in front, end to end over real sockets."""

from __future__ import annotations

import asyncio
import signal
import uuid

import grpc
import pytest

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts
from ponder_devstack.fake_apis import FakeApi
from tests.conftest import research_env
from tests.support.fakes import behaving
from tests.support.grpc_errors import bad_request_fields


RR = pb.WORKFLOW_KIND_RESEARCH_REFLECTION
BYPASS = pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS)


@pytest.fixture
def engine_address(request: pytest.FixtureRequest, stack) -> str:
    """The in-process gateway (local engine), or with `@on_both_engines` also a gateway on
    the temporal engine (worker processes, the real Temporal dev server)."""
    if getattr(request, "param", "local") == "local":
        return str(stack.address("gateway"))
    return str(request.getfixturevalue("temporal_stack").address)


@pytest.fixture
async def stub(engine_address: str):
    """A WorkflowService stub on the gateway of the engine under test."""
    async with grpc.aio.insecure_channel(engine_address) as channel:
        yield workflow_grpc.WorkflowServiceStub(channel)


# The same API test against both engines.
on_both_engines = pytest.mark.parametrize("engine_address", ["local", "temporal"], indirect=True)


def spec(topic: str, kind: int = pb.WORKFLOW_KIND_REFLECTION, **params: object) -> pb.Workflow:
    """A workflow to create (cache bypassed unless a policy is given)."""
    parameters = pb.WorkflowParameters(**{"cache_policy": pb.CACHE_POLICY_BYPASS, **params})  # type: ignore[arg-type]
    return pb.Workflow(kind=kind, topic=topic, parameters=parameters)  # type: ignore[arg-type]


async def watch_all(stub, name: str) -> list[pb.WatchWorkflowResponse]:
    """Every event of a watch until the stream ends."""
    return [
        event async for event in stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), timeout=60)
    ]


@on_both_engines
async def test_create_then_watch_to_the_result(stub, fake_arxiv: FakeApi):
    """Create returns at once (PENDING); watch starts with a snapshot, reports each step, and
    ends with FINISHED carrying the result; Get then returns the same record."""
    with behaving(fake_arxiv, latency=0.5):
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec("dense retrieval for open-domain QA", RR)),
            timeout=10,
        )
        workflow = created.workflow
        assert workflow.state == pb.WORKFLOW_STATE_PENDING
        assert workflow.name.startswith("workflows/")
        events = await watch_all(stub, workflow.name)
    types = [e.event_type for e in events]
    assert types[0] == pb.WORKFLOW_EVENT_TYPE_SNAPSHOT
    assert types[-1] == pb.WORKFLOW_EVENT_TYPE_FINISHED
    assert pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED in types
    steps = {e.step.name for e in events if e.event_type == pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED}
    assert {"research", "rank", "reflect"} <= steps
    assert [e.sequence for e in events[1:]] == sorted(e.sequence for e in events[1:])
    final = events[-1].workflow
    assert final.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert final.result.citations
    got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=workflow.name), timeout=10)
    assert got.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert got.workflow.result.text == final.result.text


async def test_a_reconnecting_watch_gets_the_current_state_first(stub, fake_arxiv: FakeApi):
    """A watcher that drops and reconnects gets a snapshot of the workflow as it is now
    (RUNNING, with the steps so far), then the live events to the end."""
    with behaving(fake_arxiv, latency=1.0):
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec("lost in the middle long contexts", RR)),
            timeout=10,
        )
        name = created.workflow.name
        first = stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), timeout=60)
        await first.read()
        await first.read()
        first.cancel()
        events = await watch_all(stub, name)
    assert events[0].event_type == pb.WORKFLOW_EVENT_TYPE_SNAPSHOT
    assert events[0].workflow.state == pb.WORKFLOW_STATE_RUNNING
    assert events[0].workflow.steps
    assert events[-1].workflow.state == pb.WORKFLOW_STATE_SUCCEEDED


@on_both_engines
async def test_cancel_stops_a_running_workflow(stub, fake_arxiv: FakeApi):
    """Cancelling during research: CANCELLED at once, no reflection step ever runs, and a
    second cancel is FAILED_PRECONDITION."""
    with behaving(fake_arxiv, latency=3.0):
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec("mixture of experts routing", RR)), timeout=10
        )
        name = created.workflow.name
        await asyncio.sleep(0.3)
        cancelled = await stub.CancelWorkflow(pb.CancelWorkflowRequest(name=name), timeout=5)
    workflow = cancelled.workflow
    assert workflow.state == pb.WORKFLOW_STATE_CANCELLED
    assert workflow.error.code == grpc.StatusCode.CANCELLED.value[0]
    assert "reflect" not in [step.name for step in workflow.steps]
    research = next(step for step in workflow.steps if step.name == "research")
    assert research.state == pb.STEP_STATE_FAILED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelWorkflow(pb.CancelWorkflowRequest(name=name), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@on_both_engines
async def test_list_pages_newest_first_with_a_filter(stub):
    """Five new workflows list newest first, two per page, with working page tokens and a
    state filter; a token from another filter is refused."""
    tag = uuid.uuid4().hex[:6]
    names = []
    for i in range(5):
        reply = await stub.RunWorkflow(
            pb.RunWorkflowRequest(workflow=spec(f"transformer attention {tag} {i}")), timeout=30
        )
        names.append(reply.workflow.name)
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = await stub.ListWorkflows(
            pb.ListWorkflowsRequest(page_size=2, page_token=token, filter="state = SUCCEEDED"),
            timeout=10,
        )
        assert len(page.workflows) <= 2
        seen.extend(w.name for w in page.workflows)
        token = page.next_page_token
        if not token:
            break
    mine = [name for name in seen if name in names]
    assert mine == list(reversed(names))
    assert len(seen) == len(set(seen))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListWorkflows(
            pb.ListWorkflowsRequest(
                page_size=2, filter="state = FAILED", page_token=page_token(stub)
            ),
            timeout=10,
        )
    assert bad_request_fields(caught.value) == {"page_token"}


@on_both_engines
async def test_delete_a_finished_workflow_on_either_engine(stub):
    """On either engine a finished workflow is deleted (then NOT_FOUND, and gone from the
    list); a second delete is NOT_FOUND."""
    tag = uuid.uuid4().hex[:6]
    ran = await stub.RunWorkflow(
        pb.RunWorkflowRequest(workflow=spec(f"transformer attention {tag}")), timeout=30
    )
    name = ran.workflow.name
    await stub.DeleteWorkflow(pb.DeleteWorkflowRequest(name=name), timeout=10)
    for call in (
        stub.GetWorkflow(pb.GetWorkflowRequest(name=name), timeout=10),
        stub.DeleteWorkflow(pb.DeleteWorkflowRequest(name=name), timeout=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListWorkflows(pb.ListWorkflowsRequest(filter=f'topic:"{tag}"'))
    assert name not in [w.name for w in listed.workflows]


def page_token(_stub) -> str:
    """A token made for the filter `state = SUCCEEDED` (not the one it is used with)."""
    from ponder_gateway.listing import token_at

    return token_at((0, "workflows/x"), "state = SUCCEEDED")


@pytest.mark.parametrize(
    ("request_message", "method", "fields"),
    [
        (pb.ListWorkflowsRequest(filter="colour = red"), "ListWorkflows", {"filter"}),
        (pb.ListWorkflowsRequest(page_size=500), "ListWorkflows", {"page_size"}),
        (pb.GetWorkflowRequest(name="workflow/x"), "GetWorkflow", {"name"}),
        (
            pb.CreateWorkflowRequest(workflow=spec(""), workflow_id="Bad_ID"),
            "CreateWorkflow",
            {"workflow_id"},
        ),
    ],
    ids=["filter", "page-size", "name", "workflow-id"],
)
async def test_bad_requests(stub, request_message, method, fields):
    """Malformed long-running requests are INVALID_ARGUMENT naming the field."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(request_message, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == fields


@on_both_engines
async def test_unknown_and_duplicate_workflows(stub):
    """Get of an unknown workflow is NOT_FOUND; creating an existing id is ALREADY_EXISTS."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetWorkflow(pb.GetWorkflowRequest(name="workflows/nothing-here"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    workflow_id = f"w-{uuid.uuid4().hex[:8]}"
    request = pb.CreateWorkflowRequest(workflow=spec("retrieval"), workflow_id=workflow_id)
    created = await stub.CreateWorkflow(request, timeout=10)
    assert created.workflow.name == f"workflows/{workflow_id}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateWorkflow(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


@on_both_engines
@pytest.mark.parametrize(
    "policy", [pb.CACHE_POLICY_BYPASS, pb.CACHE_POLICY_USE], ids=["run", "hit"]
)
async def test_creates_racing_for_one_id_make_one_workflow(stub, policy: int):
    """Five creates of one caller-chosen id at once (a client retrying before its first reply
    came), each on its own topic when they run, on one topic the cache answers when they hit:
    one workflow is recorded, the other four are ALREADY_EXISTS (the store's insert decides,
    not a read before it)."""
    topic = "dense retrieval for open-domain QA"
    if policy == pb.CACHE_POLICY_USE:  # the cache holds its answer (a run, or already a hit)
        first = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec(topic, RR, cache_policy=policy)), timeout=10
        )
        assert (await watch_all(stub, first.workflow.name))[-1].workflow.state == (
            pb.WORKFLOW_STATE_SUCCEEDED
        )
    workflow_id = f"race-{uuid.uuid4().hex[:8]}"
    topics = [topic if policy == pb.CACHE_POLICY_USE else f"{topic} {i}" for i in range(5)]
    outcomes = await asyncio.gather(
        *(
            stub.CreateWorkflow(
                pb.CreateWorkflowRequest(
                    workflow=spec(text, RR, cache_policy=policy), workflow_id=workflow_id
                ),
                timeout=20,
            )
            for text in topics
        ),
        return_exceptions=True,
    )
    created = [o for o in outcomes if isinstance(o, pb.CreateWorkflowResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(created) == 1
    assert [error.code() for error in refused] == [grpc.StatusCode.ALREADY_EXISTS] * 4
    kept = await stub.GetWorkflow(pb.GetWorkflowRequest(name=f"workflows/{workflow_id}"), timeout=5)
    assert kept.workflow.topic == created[0].workflow.topic
    if policy == pb.CACHE_POLICY_USE:
        assert created[0].workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
        assert created[0].workflow.cache.hit


class TestSemanticCache:
    """The cache in front of workflows."""

    async def test_hit_miss_paraphrase_bypass_refresh(self, stub):
        """A first run misses and stores; the same request again replays it; the same topic
        and a close paraphrase hit (with their similarity and the source workflow); BYPASS
        skips the cache; REFRESH reruns, and the first request is no longer replayed."""
        tag = uuid.uuid4().hex[:6]
        topic = f"How do language agents use self-reflection to improve, case {tag}?"
        use = pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_USE)

        async def run(text: str, params: pb.WorkflowParameters) -> pb.Workflow:
            reply = await stub.RunReflectionWorkflow(
                pb.RunReflectionWorkflowRequest(topic=text, parameters=params), timeout=30
            )
            workflow: pb.Workflow = reply.workflow
            return workflow

        first = await run(topic, use)
        assert not first.cache.hit
        assert first.steps[0].message.startswith("miss (")
        assert first.cache.verdict in (
            pb.CACHE_VERDICT_EMPTY,
            pb.CACHE_VERDICT_BELOW_THRESHOLD,
            pb.CACHE_VERDICT_REJECTED,  # other tests' topics differ by their tags
        )
        # The same request again is a replay of `first` (replay.py); the same topic in other
        # bytes (spaces around it) is a new workflow answered by the cache.
        replay = stub.RunReflectionWorkflow(
            pb.RunReflectionWorkflowRequest(topic=topic, parameters=use), timeout=30
        )
        assert (await replay).workflow == first
        assert "x-ponder-replay-age" in dict(await replay.initial_metadata())
        again = await run(f"  {topic} ", use)
        assert again.cache.hit
        assert again.cache.similarity == pytest.approx(1.0)
        assert again.cache.source_workflow == first.name
        assert again.result.text == first.result.text
        assert [s.name for s in again.steps] == ["cache_lookup"]
        near = await run(topic.replace("self-reflection", "self reflection"), use)
        assert near.cache.hit
        assert near.cache.verdict == pb.CACHE_VERDICT_ACCEPTED
        assert 0.95 <= near.cache.similarity <= 1.0
        bypass = await run(topic, BYPASS)
        assert not bypass.cache.hit
        assert bypass.steps[0].state == pb.STEP_STATE_SKIPPED
        assert "cache_store" not in [s.name for s in bypass.steps]
        refresh = await run(topic, pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_REFRESH))
        assert not refresh.cache.hit
        assert refresh.steps[-1].name == "cache_store"
        latest = await run(topic, use)
        assert latest.cache.source_workflow == refresh.name


async def test_restart_serves_finished_workflows_and_resolves_running_ones(
    process_stack: Stack, fake_arxiv: FakeApi, fake_tavily: FakeApi, tmp_path
):
    """A gateway process restarted on the same record file still serves a finished workflow,
    and one that was running when it stopped is FAILED with a reason, not RUNNING forever."""
    env = {
        **research_env(fake_arxiv, fake_tavily, tmp_path),
        "PONDER_GATEWAY_STORE_PATH": str(tmp_path / "workflows.sqlite3"),
        "PONDER_SHUTDOWN_GRACE_SECONDS": "0.5",
        "PONDER_INTERNAL_TOKEN": process_stack.internal_token,  # the services' token
    }
    for service in process_stack.services:
        if service.name != "gateway":
            env[f"PONDER_{service.name.upper()}_ADDR"] = service.address
    ports = StackPorts.free()

    def gateway() -> Stack:
        stack = Stack(ports=ports, log_dir=tmp_path, extra_env=env)
        stack.services = [s for s in stack.services if s.name == "gateway"]
        return stack

    first = gateway()
    first.start()
    try:
        await first.wait_ready(timeout=60)
        async with grpc.aio.insecure_channel(first.services[0].address) as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            done = await stub.RunWorkflow(
                pb.RunWorkflowRequest(workflow=spec("retrieval")), timeout=30
            )
            with behaving(fake_arxiv, latency=5.0):
                running = await stub.CreateWorkflow(
                    pb.CreateWorkflowRequest(workflow=spec("slow arxiv topic", RR)), timeout=10
                )
                await asyncio.sleep(0.3)
                assert first.services[0].process is not None
                first.services[0].process.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(first.services[0].process.wait, 30)
        assert code == 0
    finally:
        first.stop()
    second = gateway()
    second.start()
    try:
        await second.wait_ready(timeout=60)
        async with grpc.aio.insecure_channel(second.services[0].address) as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            kept = await stub.GetWorkflow(
                pb.GetWorkflowRequest(name=done.workflow.name), timeout=10
            )
            resolved = await stub.GetWorkflow(
                pb.GetWorkflowRequest(name=running.workflow.name), timeout=10
            )
    finally:
        second.stop()
    assert kept.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert kept.workflow.result.text == done.workflow.result.text
    assert resolved.workflow.state == pb.WORKFLOW_STATE_FAILED
    assert "shut down" in resolved.workflow.error.message


@on_both_engines
async def test_watch_relays_reflection_progress(stub):
    """Watchers see the reflection's own draft/critique/refine steps as they happen."""
    created = await stub.CreateWorkflow(
        pb.CreateWorkflowRequest(
            workflow=spec(
                "retrieval-augmented generation progress", max_iterations=2, score_threshold=10
            )
        ),
        timeout=10,
    )
    events = await watch_all(stub, created.workflow.name)
    progress = [
        e.step.message
        for e in events
        if e.event_type == pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED and e.step.name == "reflect"
    ]
    assert "iteration 1: draft started" in progress
    assert any(m.startswith("iteration 1: critique done, score") for m in progress)
    assert "iteration 2: refine started" in progress
    reflect = [
        e.step
        for e in events
        if e.event_type == pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED and e.step.name == "reflect"
    ]
    assert [s.iteration for s in reflect] == sorted(s.iteration for s in reflect)
    assert reflect[-1].iteration == 2
    final = events[-1].workflow
    assert len(final.result.iterations) == 2
    assert list(reflect[-1].iteration_scores) == [
        pytest.approx(done.critique.score) for done in final.result.iterations
    ]
    counts = {s.name: s.document_count for s in final.steps}
    assert counts["research"] >= counts["rank"] == len(final.result.sources) > 0
    assert counts["reflect"] == 0


async def test_the_callers_deadline_reaches_the_sources(stub, fake_arxiv: FakeApi):
    """A 2 s deadline with a 3 s arXiv: the workflow still answers in time, from the other
    sources, and says arXiv timed out: the deadline flowed down to research."""
    with behaving(fake_arxiv, latency=3.0):
        reply = await stub.RunWorkflow(
            pb.RunWorkflowRequest(workflow=spec("speculative decoding deadline", RR)),
            timeout=2.0,
        )
    workflow = reply.workflow
    assert workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert workflow.execution_time.ToNanoseconds() < 2e9
    assert any("SOURCE_KIND_ARXIV" in w and "TIMEOUT" in w for w in workflow.warnings)
