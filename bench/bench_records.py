"""Workflow records at scale: fill a record store with N records (mixed kinds, states, ages and
tenants; half of them cache hits sharing a pool of results), then time ListWorkflows (page size
10; no filter, state, kind, a create_time range, and a filter no index answers) and GetWorkflow
over gRPC against the gateway's real servicer and engine, and report bytes per record.

Usage: nice .venv/bin/python bench/bench_records.py [--records 1000000] [--store sqlite|redis]
       [--queries 300] [--dir DIR] [--keep]

The fill goes straight through the store's bulk path (`save_many`, 20,000 records per
transaction or pipeline); the queries go over a real socket to a WorkflowService served by the
gateway's GatewayModule on that store (its upstreams are never called: list and get only read
records), as the default tenant. Prints a Markdown table; exits 1 when a target is missed
(List p50 <= 10 ms and p99 <= 50 ms for the indexed filters, Get p50 <= 2 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import redis.asyncio as aioredis

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.redis_server import RedisServer
from ponder_gateway.record_codec import RecordCodec
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import SqliteWorkflowStore
from ponder_runtime import configure_telemetry, load_settings


DAY_NS = 86_400 * 1_000_000_000
NOW_NS = 1_780_000_000 * 1_000_000_000  # 2026-05-28
KINDS = (
    pb.WORKFLOW_KIND_REFLECTION,
    pb.WORKFLOW_KIND_RESEARCH,
    pb.WORKFLOW_KIND_RESEARCH_REFLECTION,
)
STATES = (  # (state, weight): most finished, a few still running
    (pb.WORKFLOW_STATE_SUCCEEDED, 85),
    (pb.WORKFLOW_STATE_FAILED, 8),
    (pb.WORKFLOW_STATE_CANCELLED, 4),
    (pb.WORKFLOW_STATE_RUNNING, 2),
    (pb.WORKFLOW_STATE_PENDING, 1),
)
TENANTS = ("default", "default", "default", "acme", "globex")
WORDS = [
    "retrieval",
    "augmented",
    "generation",
    "self",
    "reflection",
    "critique",
    "agents",
    "planning",
    "tool",
    "use",
    "evaluation",
    "benchmark",
    "transformer",
    "attention",
    "sparse",
    "mixture",
    "experts",
    "routing",
    "memory",
    "long",
    "context",
    "summarization",
    "citation",
    "grounding",
    "hallucination",
    "verification",
]
FILTERS = {
    "none": "",
    "state": "state = FAILED",
    "kind": "kind = RESEARCH",
    "time range": 'create_time >= "2026-03-01T00:00:00Z" AND create_time < "2026-03-08T00:00:00Z"',
    "topic (bounded scan)": 'topic:"zebra"',
}
INDEXED = ("none", "state", "kind", "time range")


def result(seed: int) -> pb.WorkflowResult:
    """A result of a realistic size: ~2 KB of text, five sources with snippets, citations."""
    rng = random.Random(seed)
    text = " ".join(rng.choice(WORDS) for _ in range(300))
    sources = [
        document_pb2.Document(
            id=f"arxiv:2401.{rng.randrange(10000, 99999)}",
            title=" ".join(rng.choice(WORDS) for _ in range(8)).title(),
            url=f"https://arxiv.org/abs/2401.{rng.randrange(10000, 99999)}",
            summary=" ".join(rng.choice(WORDS) for _ in range(60)),
        )
        for _ in range(5)
    ]
    return pb.WorkflowResult(
        text=text, sources=sources, score=rng.uniform(6, 9.5), model="gpt-4o-mini",
        provider="openai",
    )  # fmt: skip


def records(count: int, pool: list[pb.WorkflowResult], seed: int = 7) -> Iterator[pb.Workflow]:
    """`count` records, oldest first over 90 days: half cache hits sharing the pool."""
    rng = random.Random(seed)
    states = [state for state, weight in STATES for _ in range(weight)]
    step = 90 * DAY_NS // count
    for i in range(count):
        created = NOW_NS - 90 * DAY_NS + i * step + rng.randrange(step)
        state = rng.choice(states)
        workflow = pb.Workflow(
            name=f"workflows/{i:08x}-{rng.randrange(1 << 32):08x}",
            id=f"{i:08x}",
            kind=rng.choice(KINDS),
            state=state,
            topic=" ".join(rng.choice(WORDS) for _ in range(6)),
            tenant=rng.choice(TENANTS),
            trace_id=f"{rng.getrandbits(128):032x}",
        )
        workflow.create_time.FromNanoseconds(created)
        workflow.update_time.FromNanoseconds(created + 2_000_000_000)
        hit = state == pb.WORKFLOW_STATE_SUCCEEDED and rng.random() < 0.6
        if hit:
            workflow.steps.add(
                name="cache_lookup", state=pb.STEP_STATE_SUCCEEDED,
                message="hit (similarity 1.000; exact: the same text)",
            )  # fmt: skip
            workflow.cache.CopyFrom(
                pb.CacheInfo(
                    hit=True, similarity=1.0, source_workflow=f"workflows/{i // 2:08x}",
                    namespace="workflow/reflection/v1/5c0f8e1a2b3c/global",
                    verdict=pb.CACHE_VERDICT_EXACT, reason="the same text",
                )
            )  # fmt: skip
        else:
            for name in ("cache_lookup", "research", "rank", "reflect", "cache_store"):
                workflow.steps.add(name=name, state=pb.STEP_STATE_SUCCEEDED, message=f"{name} ok")
        if state == pb.WORKFLOW_STATE_SUCCEEDED:
            workflow.result.CopyFrom(pool[rng.randrange(len(pool))])
            workflow.end_time.FromNanoseconds(created + 2_000_000_000)
        elif state == pb.WORKFLOW_STATE_FAILED:
            workflow.error.code = 9
            workflow.error.message = "no sources found for the topic; try other words"
        yield workflow


def record_sizes() -> str:
    """Stored bytes of one record of each sort (the record without its result; the result
    once, shared): a succeeded research-reflection run, a cache hit, a failed one."""
    pool = [result(seed) for seed in range(3)]
    sample = list(records(400, pool))
    codec = RecordCodec()
    sorts = {
        "succeeded (ran)": next(w for w in sample if w.result.text and not w.cache.hit),
        "cache hit": next(w for w in sample if w.cache.hit),
        "failed": next(w for w in sample if w.state == pb.WORKFLOW_STATE_FAILED),
    }
    parts = []
    for label, workflow in sorts.items():
        encoded = codec.encode(workflow)
        shared = f" + result {len(encoded.result)} B once" if encoded.result else ""
        raw = len(workflow.SerializeToString())
        parts.append(f"{label}: {len(encoded.data)} B{shared} (uncompressed copy {raw} B)")
    return "record bytes: " + "; ".join(parts)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def fill(store: SqliteWorkflowStore | RedisWorkflowStore, count: int) -> float:
    """Bulk-insert `count` records; seconds taken."""
    pool = [result(seed) for seed in range(1000)]
    started = time.perf_counter()
    batch: list[pb.Workflow] = []
    for workflow in records(count, pool):
        batch.append(workflow)
        if len(batch) == 20_000:
            await store.save_many(batch)
            batch = []
            print(f"  filled {int(workflow.id, 16) + 1:,}", file=sys.stderr, flush=True)
    if batch:
        await store.save_many(batch)
    return time.perf_counter() - started


async def measure(address: str, queries: int) -> dict[str, tuple[float, float]]:
    """p50/p99 (ms) of each list filter (first pages and pages further on) and of Get."""
    found: dict[str, tuple[float, float]] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        names: list[str] = []
        for label, text in FILTERS.items():
            timings: list[float] = []
            token = ""
            for i in range(queries):
                request = pb.ListWorkflowsRequest(page_size=10, filter=text, page_token=token)
                started = time.perf_counter()
                reply = await stub.ListWorkflows(request, timeout=30)
                timings.append((time.perf_counter() - started) * 1000)
                names.extend(w.name for w in reply.workflows[:2])
                token = reply.next_page_token if i % 20 != 19 else ""  # deep pages and first
            found[f"List, {label}"] = (percentile(timings, 0.5), percentile(timings, 0.99))
        timings = []
        for name in names[:queries]:
            started = time.perf_counter()
            await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), timeout=30)
            timings.append((time.perf_counter() - started) * 1000)
        found["Get"] = (percentile(timings, 0.5), percentile(timings, 0.99))
    return found


def sqlite_sizes(path: Path, count: int) -> str:
    """Bytes per record on disk, and per part, from SQLite's dbstat."""
    with sqlite3.connect(path) as db:
        try:
            parts = dict(
                db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
            )
        except sqlite3.OperationalError:
            parts = {}
        avg = db.execute(
            "SELECT AVG(length(data)), SUM(result_hash IS NOT NULL) FROM workflows"
        ).fetchone()
        results = db.execute("SELECT COUNT(*), AVG(length(data)) FROM workflow_results").fetchone()
    total = path.stat().st_size + sum(
        p.stat().st_size for p in path.parent.glob(path.name + "-wal")
    )
    lines = [
        f"file {total / 1e6:,.1f} MB = {total / count:,.0f} B/record; record bytes (no "
        f"result; zlib over 1 KB) avg {avg[0]:,.0f} B; {results[0]:,} distinct results "
        f"avg {results[1]:,.0f} B",
    ]
    if parts:
        table = sum(v for k, v in parts.items() if k == "workflows")
        indexes = sum(
            v
            for k, v in parts.items()
            if k.startswith(("workflows_", "sqlite_autoindex_workflows"))
        )
        lines.append(
            f"table {table / count:,.0f} B/record, indexes {indexes / count:,.0f} B/record, "
            f"results {parts.get('workflow_results', 0) / count:,.0f} B/record"
        )
    return "; ".join(lines)


async def fill_store(kind: str, env: dict[str, object], path: Path, count: int) -> None:
    """Fill the SQLite file or the Redis server named by `env`."""
    if kind == "redis":
        client = aioredis.Redis.from_url(str(env["redis_url"]))
        seconds = await fill(RedisWorkflowStore(client), count)
        await client.aclose()
    else:
        store = SqliteWorkflowStore(path)
        seconds = await fill(store, count)
        await store.close()
    print(f"fill: {count:,} records in {seconds:.0f} s", flush=True)


async def serve_and_measure(env: dict[str, object], queries: int) -> dict[str, tuple[float, float]]:
    """The gateway's WorkflowService on a real socket over the filled store, measured."""
    settings = load_settings(GatewaySettings, **env, http_port=-1, retention=0)
    module = GatewayModule(settings, configure_telemetry(settings))
    server = grpc.aio.server()
    module.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        return await measure(f"127.0.0.1:{port}", queries)
    finally:
        await server.stop(0)
        await module.close()


async def redis_bytes(url: str, count: int) -> str:
    """Redis's memory per record."""
    client = aioredis.Redis.from_url(url)
    try:
        used = int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()
    return f"redis used_memory {used / 1e6:,.1f} MB = {used / count:,.0f} B/record"


def report(args: argparse.Namespace, results: dict[str, tuple[float, float]]) -> list[str]:
    """Print the table; the targets missed."""
    print(f"\n{args.store}, {args.records:,} records, {args.queries} queries each, page size 10\n")
    print("| query | p50 ms | p99 ms |\n|---|---|---|")
    for label, (p50, p99) in results.items():
        print(f"| {label} | {p50:.2f} | {p99:.2f} |")
    missed = [
        label for label in INDEXED
        if results[f"List, {label}"][0] > 10 or results[f"List, {label}"][1] > 50
    ]  # fmt: skip
    if results["Get"][0] > 2:
        missed.append("Get")
    return missed


async def main() -> int:
    """Fill, serve, measure, report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="reuse a filled store in --dir")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="ponder-records-"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / "workflows.sqlite3"
    env: dict[str, object] = {"store_path": path, "host": "127.0.0.1", "port": 0}
    redis_server: RedisServer | None = None
    sizes = ""
    try:
        if args.store == "redis":
            kept = args.keep and (root / "redis").exists()
            redis_server = RedisServer(root / "redis")
            redis_server.start(timeout=900)  # a kept store loads its append-only file first
            env["redis_url"] = redis_server.url
        else:
            kept = args.keep and path.exists()
        if not kept:
            await fill_store(args.store, env, path, args.records)
        results = await serve_and_measure(env, args.queries)
        if redis_server is not None:
            sizes = await redis_bytes(redis_server.url, args.records)
    finally:
        if redis_server is not None:
            redis_server.stop()
    missed = report(args, results)
    print("\n" + record_sizes())
    print("\n" + (sizes or sqlite_sizes(path, args.records)))
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}")
    print(f"(nearest-rank percentiles; {os.cpu_count()} cores; store in {root})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
