"""Retention soak through the stack: steady gRPC traffic on the four real services with a short
retention, the gateway's store sampled every 10 s.

Usage: nice .venv/bin/python bench/bench_retention_stack.py [--redis] [--seconds 180]
       [--rate 3] [--retention 20] [--sweep 5]

Starts embedding, research, reflection and the gateway as processes (ponder_devstack's Stack)
with PONDER_GATEWAY_RETENTION=`--retention` seconds, PONDER_GATEWAY_RETENTION_SWEEP_SECONDS=
`--sweep`, replays off and the gateway's Prometheus endpoint on; records on SQLite, or with
`--redis` on a local redis-server (devstack's RedisServer). Sends `--rate` RunWorkflow calls a
second (kind REFLECTION, the offline provider): half a distinct topic (the reflection runs),
half one of a few repeated topics (the semantic cache answers). Every 10 s it prints the live
records (a count in the store), the store's size (SQLite: the records' and events' files with
their WAL, and the pages in use; Redis: used_memory and DBSIZE), `ponder_workflow_purged` from
/metrics and the workflows a second. Verdict: the last third's mean size over the middle
third's (flat is 1.0; passes at <= 1.2), something purged, no failed workflow; exits 1 if not.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts, files_in
from ponder_devstack.ports import free_port
from ponder_devstack.redis_server import RedisServer


REPEATED = (
    "How do language agents use self-reflection?",
    "What is retrieval-augmented generation?",
    "What is the tree of thoughts method?",
    "How does self-consistency improve chain-of-thought reasoning?",
)
PREFIX = "ponder:gateway"


@dataclass
class Traffic:
    """What the load saw."""

    done: int = 0
    failed: int = 0
    hits: int = 0  # answered by the semantic cache
    names: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


@dataclass
class Sample:
    """One 10 s sample of the store."""

    t: float
    live: int
    size: int  # SQLite: the files (with WAL); Redis: used_memory
    extra: str  # SQLite: bytes in pages in use; Redis: DBSIZE
    purged: float
    rate: float


async def one(stub: workflow_grpc.WorkflowServiceStub, traffic: Traffic, topic: str) -> None:
    """One RunWorkflow; counted as done or failed."""
    workflow = pb.Workflow(kind=pb.WORKFLOW_KIND_REFLECTION, topic=topic)
    try:
        reply = await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=workflow), timeout=120)
    except grpc.aio.AioRpcError as exc:
        traffic.failed += 1
        traffic.errors.append(f"{exc.code().name}: {exc.details()}")
        return
    traffic.names.add(reply.workflow.name)
    traffic.hits += reply.workflow.cache.hit
    if reply.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED:
        traffic.done += 1
    else:
        traffic.failed += 1
        traffic.errors.append(f"{reply.workflow.name}: {reply.workflow.error.message}")


async def load(
    stub: workflow_grpc.WorkflowServiceStub, traffic: Traffic, rate: float, until: float
) -> None:
    """`rate` calls a second until `until`: half distinct topics, half repeats."""
    rng = random.Random(19)
    started = time.monotonic()
    sent = 0
    tasks: set[asyncio.Task[None]] = set()
    while (now := time.monotonic()) < until:
        for _ in range(int((now - started) * rate) - sent):
            sent += 1
            if rng.random() < 0.5:
                topic = f"{rng.choice(REPEATED)} ({uuid.uuid4().hex[:8]})"
            else:
                topic = rng.choice(REPEATED)
            task = asyncio.create_task(one(stub, traffic, topic))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(0.05)
    if tasks:
        await asyncio.gather(*tasks)


def sqlite_size(path: Path) -> tuple[int, int, int]:
    """(records, bytes of the store's files with their WAL, bytes in pages in use)."""
    files = sum(p.stat().st_size for p in path.parent.glob(f"{path.stem}*"))
    used = 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        live = int(db.execute("SELECT count(*) FROM workflows").fetchone()[0])
        for file in (path, path.with_name(f"{path.stem}-events{path.suffix}")):
            if file.exists():
                with sqlite3.connect(f"file:{file}?mode=ro", uri=True, timeout=10) as each:
                    pages, free, size = (
                        each.execute(f"PRAGMA {pragma}").fetchone()[0]
                        for pragma in ("page_count", "freelist_count", "page_size")
                    )
                used += (pages - free) * size
    return live, files, used


async def redis_size(client: aioredis.Redis) -> tuple[int, int, int]:
    """(records, used_memory, DBSIZE)."""
    live = int(await client.zcard(f"{PREFIX}:z:all"))  # every record's name, in order
    used = int((await client.info("memory"))["used_memory"])
    return live, used, int(await client.dbsize())


async def purged(http: httpx.AsyncClient) -> float:
    """The gateway's ponder_workflow_purged counter from /metrics (0 before the first)."""
    reply = await http.get("/metrics")
    for line in reply.text.splitlines():
        if line.startswith("ponder_workflow_purged") and not line.startswith("#"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def sample(
    traffic: Traffic,
    store: Path,
    client: aioredis.Redis | None,
    http: httpx.AsyncClient,
    until: float,
) -> list[Sample]:
    """A sample every 10 s until `until`, printed as a table row."""
    started = time.monotonic()
    samples: list[Sample] = []
    last_done, last_t = 0, started
    extra_name = "DBSIZE" if client is not None else "bytes in pages in use"
    size_name = "used_memory" if client is not None else "file bytes (records+events, WAL)"
    print(f"| t s | live records | {size_name} | {extra_name} | purged | workflows/s |")
    print("|---|---|---|---|---|---|", flush=True)
    while time.monotonic() + 10 <= until:
        await asyncio.sleep(10)
        now = time.monotonic()
        if client is not None:
            live, size, extra = await redis_size(client)
        else:
            live, size, extra = await asyncio.to_thread(sqlite_size, store)
        finished = traffic.done + traffic.failed
        rate = (finished - last_done) / (now - last_t)
        last_done, last_t = finished, now
        row = Sample(now - started, live, size, f"{extra:,}", await purged(http), rate)
        samples.append(row)
        print(
            f"| {row.t:.0f} | {row.live:,} | {row.size:,} | {row.extra} | {row.purged:,.0f} "
            f"| {row.rate:.1f} |",
            flush=True,
        )
    return samples


def verdict(args: argparse.Namespace, samples: list[Sample], traffic: Traffic) -> int:
    """Print the verdict; 0 when flat, something purged and nothing failed."""
    third = max(1, len(samples) // 3)
    middle = [s.size for s in samples[third : 2 * third]] or [1]
    last = [s.size for s in samples[2 * third :]] or [1]
    ratio = (sum(last) / len(last)) / (sum(middle) / len(middle))
    purged_total = samples[-1].purged if samples else 0.0
    store = "redis" if args.redis else "sqlite"
    print(
        f"\n{store}: last third / middle third mean size = **{ratio:.2f}** (flat = 1.0); "
        f"purged {purged_total:,.0f}; workflows {traffic.done:,} succeeded "
        f"({traffic.hits:,} cache hits), {traffic.failed} failed "
        f"({len(traffic.names):,} distinct records); retention {args.retention:g} s, "
        f"sweep {args.sweep:g} s, {args.rate:g} calls/s for {args.seconds:g} s"
    )
    for error in traffic.errors[:10]:
        print(f"  failed: {error}")
    ok = ratio <= 1.2 and purged_total > 0 and traffic.failed == 0
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


async def soak(args: argparse.Namespace) -> int:
    """Start the stack (and Redis), load, sample, judge."""
    with tempfile.TemporaryDirectory(prefix="ponder-retention-") as tmp:
        root = Path(tmp)
        store = root / "workflows.sqlite3"
        server = RedisServer(root / "redis") if args.redis else None
        env = {}
        if server is not None:
            server.start()
            env["PONDER_GATEWAY_REDIS_URL"] = server.url
        metrics = free_port()
        stack = Stack(
            ports=StackPorts.free(),
            log_dir=root,
            extra_env={
                "PONDER_LOG_LEVEL": "WARNING",
                "PONDER_REFLECTION_PROVIDER": "offline",
                "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
                "PONDER_GATEWAY_REPLAY_SECONDS": "0",
                "PONDER_GATEWAY_RETENTION": f"{args.retention:g}s",
                "PONDER_GATEWAY_RETENTION_SWEEP_SECONDS": f"{args.sweep:g}",
                "PONDER_GATEWAY_METRICS_PORT": str(metrics),
                **files_in(root),
                **env,
            },
        )
        client = aioredis.Redis.from_url(server.url) if server is not None else None
        stack.start()
        try:
            await stack.wait_ready(timeout=240)
            async with (
                grpc.aio.insecure_channel(stack.service("gateway").address) as channel,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics}", timeout=10) as http,
            ):
                stub = workflow_grpc.WorkflowServiceStub(channel)
                traffic = Traffic()
                until = time.monotonic() + args.seconds
                _, samples = await asyncio.gather(
                    load(stub, traffic, args.rate, until),
                    sample(traffic, store, client, http, until),
                )
        finally:
            codes = stack.stop()
            if client is not None:
                await client.aclose()
            if server is not None:
                server.stop()
        print(f"exit codes: {codes}")
        return verdict(args, samples, traffic)


def main() -> int:
    """Parse, soak."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--redis", action="store_true", help="records on a local redis-server")
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=float, default=3)
    parser.add_argument("--retention", type=float, default=20)
    parser.add_argument("--sweep", type=float, default=5)
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
