"""Fault injection across the stack of real processes: a crashed cache, a crashed search, a
flaky or absent model, and SIGTERM under load. Each test bounds its own time, and each leaves
the stack healthy for the next (`Chaos.heal`)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_apis import FakeApi
from tests.reliability.chaos import (
    Chaos,
    describe,
    eventually,
    healing_stub,
    run,
    run_many,
    running_chaos,
    spec,
    unique,
)
from tests.support.fakes import behaving


@pytest_asyncio.fixture(scope="module")
async def chaos(
    tmp_path_factory: pytest.TempPathFactory, fake_arxiv: FakeApi, fake_tavily: FakeApi
) -> AsyncIterator[Chaos]:
    """One chaos stack for the module."""
    log_dir: Path = tmp_path_factory.mktemp("chaos")
    async with running_chaos(log_dir, fake_arxiv, fake_tavily) as started:
        yield started


@pytest_asyncio.fixture
async def stub(chaos: Chaos) -> AsyncIterator[workflow_grpc.WorkflowServiceStub]:
    """A stub to the gateway; afterwards the stack is healed."""
    async with healing_stub(chaos) as gateway:
        yield gateway


def step(workflow: pb.Workflow, name: str) -> pb.WorkflowStep:
    """The workflow's step called `name`."""
    return next(s for s in workflow.steps if s.name == name)


async def test_a_crashed_cache_degrades_workflows_then_serves_its_entries_again(chaos, stub):
    """kill -9 of the embedding service while ten workflows run: all ten still succeed (cache
    and ranking skipped, with warnings); restarted on the same file, it answers a repeat of a
    question asked before the crash from its cache."""
    asked = spec(unique("How do language agents use self-reflection?"))
    first = await run(stub, asked)
    assert first.succeeded, describe([first])
    assert first.workflow is not None
    assert step(first.workflow, "cache_store").state == pb.STEP_STATE_SUCCEEDED

    chaos.model.behaviour.update(latency=0.5)  # two model calls: each workflow takes ~1 s+
    load = [spec(unique(f"retrieval-augmented generation, question {i}")) for i in range(10)]
    running = asyncio.ensure_future(run_many(stub, load, timeout=60))
    await asyncio.sleep(0.8)
    assert chaos.stack.signal("embedding", signal.SIGKILL) == -signal.SIGKILL
    outcomes = await running
    assert all(o.succeeded for o in outcomes), describe(outcomes)
    degraded = [o for o in outcomes if o.workflow is not None and o.workflow.warnings]
    assert degraded, "no workflow noticed the crash"
    assert all(o.seconds < 30 for o in outcomes)

    chaos.model.behaviour.update(latency=0.0)
    outage_ends = time.monotonic() + 10  # traffic during a longer outage grows gRPC's backoff
    while time.monotonic() < outage_ends:
        during = await run(
            stub, spec(unique("dense passage retrieval for open-domain questions, outage"))
        )
        assert during.succeeded, describe([during])
        await asyncio.sleep(0.3)
    chaos.stack.restart("embedding")
    await chaos.stack.wait_serving("embedding")
    back = time.monotonic()
    while True:  # the gateway must reconnect promptly, not after a long reconnect backoff
        again = await run(stub, asked)
        assert again.succeeded, describe([again])
        assert again.workflow is not None
        if again.workflow.cache.hit or time.monotonic() - back > 3:
            break
        await asyncio.sleep(0.2)
    assert again.workflow.cache.hit, list(again.workflow.warnings)
    assert again.workflow.cache.source_workflow == first.workflow.name
    assert again.workflow.result.text == first.workflow.result.text


async def test_a_crashed_search_fails_fast_with_a_reason_and_recovers(chaos, stub):
    """kill -9 of research while arXiv keeps every search waiting: each workflow ends within
    seconds, UNAVAILABLE naming research (nothing hangs); long-running ones end FAILED; once
    research is back, workflows succeed again."""
    arxiv_only = [document_pb2.SOURCE_KIND_ARXIV]
    kind = pb.WORKFLOW_KIND_RESEARCH
    with behaving(chaos.arxiv, latency=5.0):
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(
                workflow=spec(unique("speculative decoding"), kind, arxiv_only)
            ),
            timeout=10,
        )
        load = [spec(unique(f"speculative decoding {i}"), kind, arxiv_only) for i in range(6)]
        running = asyncio.ensure_future(run_many(stub, load, timeout=60))
        await asyncio.sleep(1.0)
        killed_at = time.monotonic()
        assert chaos.stack.signal("research", signal.SIGKILL) == -signal.SIGKILL
        outcomes = await running
    waited = time.monotonic() - killed_at
    assert waited < 10, f"workflows hung for {waited:.1f}s after research died"
    for outcome in outcomes:
        assert outcome.error is not None, describe([outcome])
        assert outcome.error.code() == grpc.StatusCode.UNAVAILABLE
        assert "research" in (outcome.error.details() or "")
    for _ in range(50):
        got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=created.workflow.name), timeout=5)
        if got.workflow.state == pb.WORKFLOW_STATE_FAILED:
            break
        await asyncio.sleep(0.2)
    assert got.workflow.state == pb.WORKFLOW_STATE_FAILED
    assert "research" in got.workflow.error.message

    chaos.stack.restart("research")
    await chaos.stack.wait_serving("research")
    back = time.monotonic()  # the gateway reconnects within its reconnect backoff (2 s)
    after = await run(stub, spec(unique("speculative decoding"), kind, arxiv_only))
    while not after.succeeded and time.monotonic() - back < 10:
        await asyncio.sleep(0.5)
        after = await run(stub, spec(unique("speculative decoding"), kind, arxiv_only))
    assert after.succeeded, describe([after])


async def test_a_flaky_model_fails_no_workflow(chaos, stub):
    """The model answers 429 to 30% of calls and 500 to 5%: twenty concurrent workflows all
    succeed within their deadline (retries with backoff), and the failures really happened."""
    chaos.model.behaviour.update(rate_limit_fraction=0.3, error_fraction=0.05, retry_after="0.05")
    load = [
        spec(
            unique(f"self-consistency for chain-of-thought, case {i}"), cache=pb.CACHE_POLICY_BYPASS
        )
        for i in range(20)
    ]
    outcomes = await run_many(stub, load, timeout=60)
    assert all(o.succeeded for o in outcomes), describe(outcomes)
    assert all(o.workflow is not None and o.workflow.result.provider == "openai" for o in outcomes)
    assert chaos.model.calls_by_status[429] >= 5
    assert chaos.model.calls_by_status[500] >= 1


async def test_an_absent_model_fails_fast_then_the_circuit_recovers(chaos, stub):
    """With the model answering 500 to everything, a workflow fails with a reason naming the
    model; the breaker then opens, so the next fails at once without calling the model; when
    the model is back, workflows succeed again after the breaker's reset time."""
    chaos.model.behaviour.update(status=500)
    first = await run(stub, spec(unique("tree of thoughts"), cache=pb.CACHE_POLICY_BYPASS))
    assert first.error is not None, describe([first])
    assert first.error.code() == grpc.StatusCode.UNAVAILABLE
    assert "reflection" in (first.error.details() or "")
    assert first.seconds < 15
    calls = sum(chaos.model.calls_by_status.values())
    second = await run(stub, spec(unique("tree of thoughts"), cache=pb.CACHE_POLICY_BYPASS))
    assert second.error is not None
    assert second.error.code() == grpc.StatusCode.UNAVAILABLE
    assert second.seconds < 2, "an open circuit should fail at once"
    assert sum(chaos.model.calls_by_status.values()) == calls, "the open circuit called the model"

    chaos.model.behaviour.update(status=200)
    deadline = time.monotonic() + 15
    while True:
        recovered = await run(stub, spec(unique("tree of thoughts"), cache=pb.CACHE_POLICY_BYPASS))
        if recovered.succeeded or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert recovered.succeeded, describe([recovered])


@pytest.mark.parametrize("service", ["reflection", "research", "embedding", "gateway"])
async def test_sigterm_under_load_finishes_in_flight_work_then_exits_zero(
    chaos, stub, service: str
):
    """SIGTERM to one service while four workflows are in flight: every one of them still
    succeeds (the service drains; an embedding that goes away only costs the cache), and the
    process exits 0 within its grace period; it then restarts cleanly."""
    chaos.model.behaviour.update(latency=0.7)  # each workflow spends ~1.5 s in reflection
    kind = pb.WORKFLOW_KIND_RESEARCH_REFLECTION
    sources = [document_pb2.SOURCE_KIND_ARXIV, document_pb2.SOURCE_KIND_LIBRARY]
    load = [spec(unique(f"dense retrieval, {service} drain {i}"), kind, sources) for i in range(4)]
    searches = len(chaos.arxiv.requests)
    with behaving(chaos.arxiv, latency=0.8):
        running = asyncio.ensure_future(run_many(stub, load, timeout=60))
        # Signal once all four are in the service's hands: searching arXiv for research,
        # waiting on the model for the others (research and ranking are behind them).
        if service == "research":
            assert await eventually(lambda: len(chaos.arxiv.requests) >= searches + 4)
        else:
            assert await eventually(lambda: chaos.model.in_flight >= 4)
        started = time.monotonic()
        code = await asyncio.to_thread(chaos.stack.signal, service, signal.SIGTERM, 30.0)
        drained = time.monotonic() - started
        outcomes = await running
    assert code == 0, f"{service} exited {code}"
    assert drained < 20, f"{service} took {drained:.1f}s to drain"
    assert all(o.succeeded for o in outcomes), describe(outcomes)


async def test_a_crashed_gateway_resolves_its_running_workflows_at_restart(chaos, stub):
    """kill -9 of the gateway while three long-running workflows wait on the model: after the
    restart a workflow finished before the crash is served as it was, and the three are FAILED
    saying the gateway stopped (not RUNNING forever); new workflows run."""
    finished = await run(stub, spec(unique("How do generative agents use memory?")))
    assert finished.succeeded, describe([finished])
    assert finished.workflow is not None
    chaos.model.behaviour.update(latency=30.0)
    created = [
        await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(
                workflow=spec(
                    unique(f"How do language agents use self-reflection? crash {i}"),
                    cache=pb.CACHE_POLICY_BYPASS,  # no answer from the cache: all three wait
                )
            ),
            timeout=10,
        )
        for i in range(3)
    ]
    assert await eventually(lambda: chaos.model.in_flight >= 3)
    assert chaos.stack.signal("gateway", signal.SIGKILL) == -signal.SIGKILL
    chaos.model.behaviour.update(latency=0.0)
    chaos.stack.restart("gateway")
    await chaos.stack.wait_serving("gateway")
    kept = await stub.GetWorkflow(pb.GetWorkflowRequest(name=finished.workflow.name), timeout=10)
    assert kept.workflow == finished.workflow
    for reply in created:
        got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=reply.workflow.name), timeout=10)
        assert got.workflow.state == pb.WORKFLOW_STATE_FAILED
        assert "stopped before the workflow finished" in got.workflow.error.message
    after = await run(stub, spec(unique("How do generative agents use memory?")))
    assert after.succeeded, describe([after])
