"""Soak: ten minutes of mixed REST and gRPC load on the stack of real processes, with a fault
injected every minute, counting what completed, what failed and why, and what was lost.

Usage: .venv/bin/python bench/bench_soak.py [--duration 600] [--callers 8] [--fault-every 60]
       [--redis]

Load: `--callers` concurrent loops, each picking at random: a synchronous workflow over REST
(POST /v1/workflows/reflection) or gRPC (RunWorkflow), a long-running workflow created over gRPC
and followed with WatchWorkflow, a GetWorkflow of an earlier workflow, or a list (REST and gRPC).
Topics come from a pool of questions the library answers; half are asked anew (a unique suffix:
the model runs), half repeat (the semantic cache answers). The model is the fake OpenAI API
(0.1 s a call), arXiv and Tavily are local fakes.

Faults, in turn (each one a window; a failure that overlaps a window is "caused by the fault"):
kill -9 of the embedding service (restarted after 10 s), the model answering 500 for 15 s,
SIGTERM to research (restarted at once), the model answering 429 to 30% of calls for 20 s,
kill -9 of reflection (restarted after 5 s). With `--redis`, workflow records, rate limits and
the embedding cache live on a local redis-server (append-only) and the first fault of each
round is Redis stopped for 10 s and started again (creations refused with UNAVAILABLE in the
window count as caused by it; the gateway and the embedding service are not restarted). The
gateway is never touched: its memory over the
whole run is the flatness measure (restarted processes start afresh).

At the end every workflow the load created or ran is looked up: one that is missing, or not in
a final state a minute after the load stopped, is lost. Targets (issue 11): zero lost, zero
server errors (REST 5xx, gRPC INTERNAL/UNKNOWN/UNAVAILABLE/DEADLINE_EXCEEDED) outside fault
windows, flat gateway memory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts, files_in
from ponder_devstack.fake_apis import serve_fake_arxiv, serve_fake_tavily
from ponder_devstack.fake_openai import Behaviour, FakeOpenAI, serve_fake_openai
from ponder_devstack.redis_server import RedisServer
from ponder_runtime.runtime_metrics import resident_bytes


QUESTIONS = (
    "How do language agents use self-reflection?",
    "What is retrieval-augmented generation?",
    "How does dense passage retrieval work for open-domain question answering?",
    "How does self-consistency improve chain-of-thought reasoning?",
    "What is the tree of thoughts method?",
    "How do generative agents use memory and reflection?",
    "What does Self-RAG add to retrieval-augmented generation?",
    "How does REALM pre-train with a retriever?",
)
BREAKER_RESET = 3  # seconds the model's circuit stays open before it tries again
FINAL = {pb.WORKFLOW_STATE_SUCCEEDED, pb.WORKFLOW_STATE_FAILED, pb.WORKFLOW_STATE_CANCELLED}
SERVER_ERRORS = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.DATA_LOSS,
}


@dataclass
class Request:
    """One request of the load."""

    op: str
    started: float
    ended: float
    outcome: str  # "ok", "workflow FAILED", a gRPC code name, or "HTTP <status>"
    server_error: bool
    detail: str = ""  # the error's message, for failures


@dataclass
class Soak:
    """What the run saw."""

    requests: list[Request] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    workflows: set[str] = field(default_factory=set)
    rss: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))

    def since_fault(self, request: Request) -> str:
        """How long after the last fault window ended the request started, and which."""
        ended = [(end, name) for name, _, end in self.windows if end <= request.started]
        if not ended:
            return "before any fault"
        end, name = max(ended)
        return f"{request.started - end:.1f}s after {name!r} ended"

    def in_fault(self, request: Request) -> str | None:
        """The fault window the request overlapped, if any."""
        for name, start, end in self.windows:
            if request.started <= end and request.ended >= start:
                return name
        return None


def topic(rng: random.Random) -> str:
    """A question from the pool: half the time asked anew, else a repeat (cache hit)."""
    question = rng.choice(QUESTIONS)
    return f"{question} ({uuid.uuid4().hex[:6]})" if rng.random() < 0.5 else question


async def caller(
    soak: Soak,
    stub: workflow_grpc.WorkflowServiceStub,
    http: httpx.AsyncClient,
    until: float,
    seed: int,
) -> None:
    """One loop of the mixed load."""
    rng = random.Random(seed)

    detail = ""

    async def rest_run() -> str:
        nonlocal detail
        reply = await http.post("/v1/workflows/reflection", json={"topic": topic(rng)})
        if reply.status_code != 200:
            detail = reply.text[:300]
            return f"HTTP {reply.status_code}"
        workflow = reply.json()["workflow"]
        soak.workflows.add(workflow["name"])
        return "ok" if workflow["state"] == "WORKFLOW_STATE_SUCCEEDED" else "workflow FAILED"

    async def grpc_run() -> str:
        workflow = pb.Workflow(kind=pb.WORKFLOW_KIND_REFLECTION, topic=topic(rng))
        reply = await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=workflow), timeout=60)
        soak.workflows.add(reply.workflow.name)
        return "ok" if reply.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED else "workflow FAILED"

    async def create_watch() -> str:
        nonlocal detail
        kind = rng.choice([pb.WORKFLOW_KIND_RESEARCH, pb.WORKFLOW_KIND_RESEARCH_REFLECTION])
        workflow = pb.Workflow(kind=kind, topic=topic(rng))
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=workflow, request_id=str(uuid.uuid4())), timeout=10
        )
        soak.workflows.add(created.workflow.name)
        last = created.workflow
        async for event in stub.WatchWorkflow(
            pb.WatchWorkflowRequest(name=created.workflow.name), timeout=90
        ):
            last = event.workflow
        detail = last.error.message
        return "ok" if last.state == pb.WORKFLOW_STATE_SUCCEEDED else "workflow FAILED"

    async def get() -> str:
        if not soak.workflows:
            return "ok"
        name = rng.choice(sorted(soak.workflows))
        await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), timeout=10)
        return "ok"

    async def rest_list() -> str:
        reply = await http.get("/v1/workflows", params={"pageSize": 10})
        return "ok" if reply.status_code == 200 else f"HTTP {reply.status_code}"

    async def grpc_list() -> str:
        await stub.ListWorkflows(pb.ListWorkflowsRequest(page_size=10), timeout=10)
        return "ok"

    ops: list[tuple[str, Callable[[], Awaitable[str]], int]] = [
        ("REST run", rest_run, 25),
        ("gRPC run", grpc_run, 25),
        ("gRPC create+watch", create_watch, 20),
        ("gRPC get", get, 10),
        ("REST list", rest_list, 10),
        ("gRPC list", grpc_list, 10),
    ]
    while time.monotonic() < until:
        name, op, _ = rng.choices(ops, weights=[w for *_, w in ops])[0]
        started = time.monotonic()
        detail = ""
        try:
            outcome = await op()
            server_error = outcome.startswith("HTTP 5")
        except grpc.aio.AioRpcError as exc:
            outcome, server_error = exc.code().name, exc.code() in SERVER_ERRORS
            detail = exc.details() or ""
        except httpx.HTTPError as exc:
            outcome, server_error, detail = type(exc).__name__, True, str(exc)
        ended = time.monotonic()
        soak.requests.append(Request(name, started, ended, outcome, server_error, detail))


async def inject_faults(
    soak: Soak,
    stack: Stack,
    model: FakeOpenAI,
    until: float,
    every: float,
    *,
    settle: float,
    redis: RedisServer | None = None,
) -> None:
    """A fault every `every` seconds, in turn; each recorded as a window that ends `settle`
    seconds after the fault was undone (longer than the model's breaker reset)."""

    async def restart(name: str) -> None:
        stack.restart(name)
        await stack.wait_serving(name, timeout=180)

    async def kill_embedding() -> None:
        stack.signal("embedding", signal.SIGKILL)
        await asyncio.sleep(10)
        await restart("embedding")

    async def model_down() -> None:
        model.behaviour.update(status=500)
        await asyncio.sleep(15)
        model.behaviour.update(status=200)

    async def sigterm_research() -> None:
        await asyncio.to_thread(stack.signal, "research", signal.SIGTERM, 60.0)
        await restart("research")

    async def model_rate_limited() -> None:
        model.behaviour.update(rate_limit_fraction=0.3, retry_after="0.2")
        await asyncio.sleep(20)
        model.behaviour.update(rate_limit_fraction=0.0)

    async def kill_reflection() -> None:
        stack.signal("reflection", signal.SIGKILL)
        await asyncio.sleep(5)
        await restart("reflection")

    async def redis_restart() -> None:
        assert redis is not None
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(10)
        await asyncio.to_thread(redis.start)

    faults = [("Redis stopped 10 s", redis_restart)] if redis is not None else []
    faults += [
        ("kill -9 embedding", kill_embedding),
        ("model 500s", model_down),
        ("SIGTERM research", sigterm_research),
        ("model 429 30%", model_rate_limited),
        ("kill -9 reflection", kill_reflection),
    ]
    turn = 0
    await asyncio.sleep(min(every, max(0.0, until - time.monotonic())))
    while time.monotonic() + 30 < until:
        name, fault = faults[turn % len(faults)]
        turn += 1
        start = time.monotonic()
        await fault()
        await asyncio.sleep(settle)  # breakers close, channels reconnect: still the fault's
        soak.windows.append((name, start, time.monotonic()))
        await asyncio.sleep(max(0.0, start + every - time.monotonic()))


async def sample_memory(soak: Soak, stack: Stack, until: float, period: float = 10.0) -> None:
    """Every service's resident memory every `period` seconds."""
    started = time.monotonic()
    while time.monotonic() < until:
        for service in stack.services:
            rss = resident_bytes(service.process.pid) if service.process is not None else None
            if rss is not None:
                soak.rss[service.name].append((time.monotonic() - started, rss))
        await asyncio.sleep(period)


async def lost_workflows(stub: workflow_grpc.WorkflowServiceStub, names: set[str]) -> list[str]:
    """Workflows that cannot be found, or are still not final after a minute."""
    deadline = time.monotonic() + 60
    pending = set(names)
    missing: list[str] = []
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                reply = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    missing.append(f"{name}: NOT_FOUND")
                    pending.discard(name)
                continue
            if reply.workflow.state in FINAL:
                pending.discard(name)
        if pending:
            await asyncio.sleep(2)
    return missing + [f"{name}: not final" for name in sorted(pending)]


def p99(values: list[float]) -> float:
    """99th percentile (of at least one value)."""
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def report(soak: Soak, lost: list[str], duration: float, callers: int) -> None:
    """The markdown tables for BENCHMARKS.md."""
    print(f"{duration:g} s, {callers} callers, faults: {len(soak.windows)} windows\n")
    print(
        "| operation | requests | ok | failed in a fault window | failed otherwise "
        "| p50 ok (ms) | p99 ok (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    by_op: dict[str, list[Request]] = defaultdict(list)
    for request in soak.requests:
        by_op[request.op].append(request)
    unexplained: Counter[str] = Counter()
    excused: Counter[str] = Counter()
    for op, requests in sorted(by_op.items()):
        ok = [r for r in requests if r.outcome == "ok"]
        failed = [r for r in requests if r.outcome != "ok"]
        faulty = [r for r in failed if soak.in_fault(r)]
        other = [r for r in failed if not soak.in_fault(r)]
        for request in other:
            unexplained[f"{op}: {request.outcome}"] += 1
        for request in faulty:
            excused[f"{soak.in_fault(request)}: {request.outcome}"] += 1
        ms = [(r.ended - r.started) * 1000 for r in ok]
        p50 = statistics.median(ms) if ms else 0.0
        print(f"| {op} | {len(requests)} | {len(ok)} | {len(faulty)} | {len(other)} | "
              f"{p50:.0f} | {p99(ms) if ms else 0.0:.0f} |")  # fmt: skip
    server_errors = [r for r in soak.requests if r.server_error and not soak.in_fault(r)]
    print(f"\nworkflows created or run: {len(soak.workflows)}; lost: {len(lost)}")
    for line in lost[:20]:
        print(f"  lost {line}")
    print(f"server errors outside fault windows: {len(server_errors)}")
    print(f"failures outside fault windows, by kind: {dict(unexplained) or 'none'}")
    for request in [r for r in soak.requests if r.outcome != "ok" and not soak.in_fault(r)][:10]:
        print(f"  {request.op}: {request.outcome}, {soak.since_fault(request)}: {request.detail}")
    print(f"failures inside fault windows, by fault: {dict(excused) or 'none'}")
    print("\n| service | RSS first (MiB) | RSS at 2 min | RSS max | RSS last | samples |")
    print("|---|---|---|---|---|---|")
    for name, samples in soak.rss.items():
        values = [rss / 2**20 for _, rss in samples]
        at_two = next((rss / 2**20 for t, rss in samples if t >= 120), values[-1])
        print(f"| {name} | {values[0]:.0f} | {at_two:.0f} | {max(values):.0f} | "
              f"{values[-1]:.0f} | {len(values)} |")  # fmt: skip
    gateway = [rss / 2**20 for t, rss in soak.rss["gateway"] if t >= 120]
    if len(gateway) > 2:
        print(f"\ngateway RSS after minute 2: min {min(gateway):.0f} MiB, "
              f"max {max(gateway):.0f} MiB, last {gateway[-1]:.0f} MiB")  # fmt: skip


async def soak(args: argparse.Namespace) -> None:
    """Start everything, load, inject, look up, report."""
    model = serve_fake_openai(Behaviour(latency=0.1))
    arxiv, tavily = serve_fake_arxiv(), serve_fake_tavily()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        redis = RedisServer(root / "redis") if args.redis else None
        redis_env = {}
        if redis is not None:
            redis.start()
            redis_env = {
                "PONDER_GATEWAY_REDIS_URL": redis.url,
                "PONDER_CACHE_REDIS_URL": redis.url,
                "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "1000",  # on: shared buckets in Redis
            }
        stack = Stack(
            ports=StackPorts.free(),
            log_dir=root,
            extra_env={
                "PONDER_LOG_LEVEL": "INFO",  # research says "library indexed" at INFO
                "OPENAI_API_KEY": "sk-soak",
                "OPENAI_BASE_URL": model.base_url,
                "PONDER_REFLECTION_PROVIDER": "openai",
                "PONDER_REFLECTION_BREAKER_RESET_SECONDS": str(BREAKER_RESET),
                "PONDER_REFLECTION_RETRY_MAX_SECONDS": "1",
                "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
                **files_in(root),
                "PONDER_RESEARCH_ARXIV_API_URL": f"{arxiv.base_url}/api/query",
                "PONDER_RESEARCH_ARXIV_MIN_INTERVAL_SECONDS": "0",
                "PONDER_RESEARCH_TAVILY_API_URL": tavily.base_url,
                "TAVILY_API_KEY": "tvly-soak",
                **redis_env,
            },
        )
        stack.start()
        result = Soak()
        try:
            await stack.wait_ready(timeout=180)
            await stack.wait_for_log("research", "library indexed")
            gateway = stack.service("gateway").address
            http_base = f"http://127.0.0.1:{stack.ports.gateway_http}"
            async with (
                grpc.aio.insecure_channel(gateway) as channel,
                httpx.AsyncClient(base_url=http_base, timeout=60) as http,
            ):
                stub = workflow_grpc.WorkflowServiceStub(channel)
                until = time.monotonic() + args.duration
                await asyncio.gather(
                    *(caller(result, stub, http, until, seed) for seed in range(args.callers)),
                    inject_faults(
                        result,
                        stack,
                        model,
                        until,
                        args.fault_every,
                        settle=BREAKER_RESET + 2,
                        redis=redis,
                    ),
                    sample_memory(result, stack, until),
                )
                lost = await lost_workflows(stub, result.workflows)
        finally:
            codes = stack.stop()
            if redis is not None:
                redis.stop()
            model.close()
            arxiv.close()
            tavily.close()
    report(result, lost, args.duration, args.callers)
    print(f"\nexit codes at the end: {codes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--fault-every", type=float, default=60.0)
    parser.add_argument(
        "--redis", action="store_true", help="records, rate limits and cache on Redis, restarted"
    )
    asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    main()
