"""Two gateways side by side for benchmarks: the stack as processes (its gateway on the local
engine), a second gateway process on the temporal engine, the Temporal dev server and worker
processes; reflection on a fake OpenAI server. Used by bench/bench_temporal.py and
bench/bench_durability.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_openai import FakeOpenAI
from ponder_devstack.stack import Stack, StackPorts
from ponder_devstack.temporal import TemporalDevServer, Workers


FINAL = (pb.WORKFLOW_STATE_SUCCEEDED, pb.WORKFLOW_STATE_FAILED, pb.WORKFLOW_STATE_CANCELLED)


@dataclass
class Rig:
    """Both gateways (local and temporal engine) over the same services."""

    stack: Stack
    temporal_gateway: Stack
    server: TemporalDevServer
    workers: Workers

    def address(self, engine: str) -> str:
        """The gateway of `engine`."""
        chosen = self.stack if engine == "local" else self.temporal_gateway
        return chosen.service("gateway").address


@contextlib.asynccontextmanager
async def rig(root: Path, fake: FakeOpenAI, *, workers: int, capacity: int) -> AsyncIterator[Rig]:
    """Start everything under `root`; stop it all at the end."""
    env = {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": fake.base_url,
        "PONDER_REFLECTION_MAX_CONCURRENCY": str(capacity * 2),
        "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        "PONDER_GATEWAY_REPLAY_SECONDS": "0",
        "PONDER_GATEWAY_MAX_RUNNING_WORKFLOWS": str(capacity),
        "PONDER_GATEWAY_MAX_QUEUED_WORKFLOWS": str(capacity),
        "PONDER_CACHE_PATH": str(root / "cache.sqlite3"),
        "PONDER_RESEARCH_INDEX_PATH": str(root / "vectors.sqlite3"),
        "PONDER_LOG_LEVEL": "WARNING",
        "PONDER_TEMPORAL_HEARTBEAT_TIMEOUT_SECONDS": "3",
    }
    server = TemporalDevServer(db_file=root / "temporal.db", log_path=root / "temporal.log")
    server.start()
    stack = Stack(
        ports=StackPorts.free(),
        log_dir=root,
        extra_env={**env, "PONDER_GATEWAY_STORE_PATH": str(root / "local.sqlite3")},
    )
    temporal_env = {
        **env,
        "PONDER_GATEWAY_ENGINE": "temporal",
        "PONDER_TEMPORAL_ADDRESS": server.address,
        "PONDER_GATEWAY_STORE_PATH": str(root / "temporal.sqlite3"),
    }
    stack.start()
    other = Stack(ports=StackPorts.free(), log_dir=root / "temporal-gateway")
    pool: Workers | None = None
    try:
        await server.wait_ready()
        await stack.wait_ready(timeout=300)
        addresses = {
            f"PONDER_{s.name.upper()}_ADDR": s.address
            for s in stack.services
            if s.name != "gateway"
        }
        other.extra_env = {**temporal_env, **addresses}
        other.services = [s for s in other.services if s.name == "gateway"]
        other.start()
        pool = Workers({**other.environment(), **addresses}, root / "workers")
        for _ in range(workers):
            pool.start_one()
        await other.wait_ready(timeout=120)
        yield Rig(stack, other, server, pool)
    finally:
        if pool is not None:
            pool.stop()
        other.stop()
        stack.stop()
        server.stop()


async def wait_all(
    stub: workflow_grpc.WorkflowServiceStub, names: list[str], timeout: float
) -> dict[str, pb.Workflow]:
    """Poll until every workflow is final (or `timeout`); the last state of each."""
    deadline = time.monotonic() + timeout
    final: dict[str, pb.Workflow] = {}
    while len(final) < len(names) and time.monotonic() < deadline:
        for name in names:
            if name in final:
                continue
            got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), timeout=30)
            if got.workflow.state in FINAL:
                final[name] = got.workflow
        if len(final) < len(names):
            await asyncio.sleep(0.2)
    return final
