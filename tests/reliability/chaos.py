"""A stack of real processes for fault injection: the four services, the model behind a fake
OpenAI API (so it can rate-limit, fail or go down), and helpers to run workflows at it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts
from ponder_devstack.fake_apis import FakeApi
from ponder_devstack.fake_openai import Behaviour, FakeOpenAI, serve_fake_openai
from ponder_runtime.runtime_metrics import resident_bytes
from tests.conftest import research_env


SERVICES = ("embedding", "research", "reflection", "gateway")


@dataclass
class Chaos:
    """The stack, its model and its sources, with a stub to the gateway."""

    stack: Stack
    model: FakeOpenAI
    arxiv: FakeApi
    metrics_url: str = ""  # the gateway's /metrics, when its metrics port is on

    @property
    def gateway(self) -> str:
        """The gateway's gRPC address."""
        return self.stack.service("gateway").address

    @property
    def http(self) -> str:
        """The gateway's REST base URL."""
        return f"http://127.0.0.1:{self.stack.ports.gateway_http}"

    def rss(self, name: str) -> int:
        """Resident memory of one service's process, in bytes."""
        process = self.stack.service(name).process
        assert process is not None
        rss = resident_bytes(process.pid)
        assert rss is not None, "needs Linux /proc"
        return rss

    async def heal(self) -> None:
        """Undo a test's faults: calm the model and arXiv, restart whatever is not running."""
        self.model.behaviour = Behaviour()
        self.arxiv.behaviour = type(self.arxiv.behaviour)()
        restarted = False
        for name in SERVICES:
            process = self.stack.service(name).process
            if process is None or process.poll() is not None:
                self.stack.restart(name)
                restarted = True
        for name in SERVICES:
            await self.stack.wait_serving(name, timeout=120)
        if restarted:
            # The next test starts once the gateway's own channels are back too: their
            # reconnect backoff (at most 2 s) and the circuit breaker that opened while the peer
            # was away (1 s, then a trial call) outlast the peer's SERVING.
            await asyncio.sleep(3.0)


@contextlib.asynccontextmanager
async def running_chaos(
    log_dir: Path,
    arxiv: FakeApi,
    tavily: FakeApi,
    extra_env: dict[str, str] | None = None,
    metrics_port: int | None = None,
) -> AsyncIterator[Chaos]:
    """The stack (see start_chaos) once every service is SERVING; stopped afterwards."""
    env = dict(extra_env or {})
    if metrics_port is not None:
        env["PONDER_GATEWAY_METRICS_PORT"] = str(metrics_port)
    chaos = start_chaos(log_dir, arxiv, tavily, env)
    if metrics_port is not None:
        chaos.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        await chaos.stack.wait_ready(timeout=120)
        yield chaos
    finally:
        chaos.stack.stop()
        chaos.model.close()


@contextlib.asynccontextmanager
async def healing_stub(chaos: Chaos) -> AsyncIterator[workflow_grpc.WorkflowServiceStub]:
    """A stub to the gateway; afterwards the stack is healed for the next test."""
    async with grpc.aio.insecure_channel(chaos.gateway) as channel:
        yield workflow_grpc.WorkflowServiceStub(channel)
    await chaos.heal()


def start_chaos(
    log_dir: Path, arxiv: FakeApi, tavily: FakeApi, extra_env: dict[str, str] | None = None
) -> Chaos:
    """Start the stack with reflection on the fake model (quick retries, a 2 s breaker reset),
    no replays (repeats go to the semantic cache), and its files under log_dir."""
    model = serve_fake_openai()
    stack = Stack(
        ports=StackPorts.free(),
        log_dir=log_dir,
        extra_env={
            "PONDER_LOG_LEVEL": "INFO",
            "PONDER_CACHE_PATH": str(log_dir / "cache.sqlite3"),
            "PONDER_GATEWAY_STORE_PATH": str(log_dir / "workflows.sqlite3"),
            "PONDER_GATEWAY_REPLAY_SECONDS": "0",
            "PONDER_REFLECTION_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-fake-chaos",
            "OPENAI_BASE_URL": model.base_url,
            "PONDER_REFLECTION_RETRY_BASE_SECONDS": "0.05",
            "PONDER_REFLECTION_RETRY_MAX_SECONDS": "0.5",
            "PONDER_REFLECTION_BREAKER_RESET_SECONDS": "2",
            "PONDER_SHUTDOWN_GRACE_SECONDS": "20",
            **research_env(arxiv, tavily, log_dir),
            **(extra_env or {}),
        },
    )
    stack.start()
    return Chaos(stack, model, arxiv)


async def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `condition` until it holds (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def unique(topic: str) -> str:
    """A topic nobody asked before (no cache hit, no replay)."""
    return f"{topic} ({uuid.uuid4().hex[:8]})"


def spec(
    topic: str,
    kind: pb.WorkflowKind = pb.WORKFLOW_KIND_REFLECTION,
    sources: Iterable[document_pb2.SourceKind] = (),
    cache: pb.CachePolicy = pb.CACHE_POLICY_UNSPECIFIED,
) -> pb.Workflow:
    """A workflow to run."""
    return pb.Workflow(
        kind=kind,
        topic=topic,
        parameters=pb.WorkflowParameters(sources=sources, cache_policy=cache),
    )


@dataclass
class Outcome:
    """How one workflow call ended: the workflow, or the error; and how long it took."""

    workflow: pb.Workflow | None
    error: grpc.aio.AioRpcError | None
    seconds: float

    @property
    def succeeded(self) -> bool:
        """Whether the call returned a SUCCEEDED workflow."""
        return self.workflow is not None and self.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED


async def run(
    stub: workflow_grpc.WorkflowServiceStub, workflow: pb.Workflow, timeout: float = 60
) -> Outcome:
    """RunWorkflow, never raising: the outcome says what happened."""
    started = time.monotonic()
    try:
        reply = await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=workflow), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        return Outcome(None, exc, time.monotonic() - started)
    return Outcome(reply.workflow, None, time.monotonic() - started)


async def run_many(
    stub: workflow_grpc.WorkflowServiceStub, workflows: Iterable[pb.Workflow], timeout: float = 60
) -> list[Outcome]:
    """Run workflows concurrently."""
    return list(await asyncio.gather(*(run(stub, w, timeout) for w in workflows)))


def describe(outcomes: Iterable[Outcome]) -> list[str]:
    """One line per outcome, for assertion messages."""
    lines = []
    for outcome in outcomes:
        if outcome.error is not None:
            lines.append(f"{outcome.error.code().name}: {outcome.error.details()}")
        elif outcome.workflow is not None:
            state = pb.WorkflowState.Name(outcome.workflow.state)
            lines.append(
                f"{state} {outcome.workflow.error.message} {list(outcome.workflow.warnings)}"
            )
    return lines
