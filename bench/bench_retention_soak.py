"""Retention soak: steady record traffic with a short retention, the store's size sampled.

Usage: nice .venv/bin/python bench/bench_retention_soak.py [--store sqlite|redis]
       [--seconds 120] [--rate 200] [--retention 20] [--sweep 2]

Writes `--rate` workflows a second through the store's save path (each: a RUNNING save, then
its final record; 60% cache hits sharing 50 results, the rest succeeded with a result of their
own or failed) plus two events each, while the gateway's Retention purges finished records
older than `--retention` seconds every `--sweep` seconds. Prints the live records, the store's
bytes (SQLite: pages in use, and the file; Redis: used_memory) and the purged count every 10 s.
The size must stop growing once the first records pass the retention: exits 1 when the last
third's mean live size is over 1.2x the middle third's.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_devstack.redis_server import RedisServer
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.retention import Retention
from ponder_gateway.store import SqliteWorkflowStore
from ponder_gateway.workflows.events import RedisEventLog, SqliteEventLog, make_event
from ponder_runtime.protobuf import timestamp


def _result(seed: int) -> pb.WorkflowResult:
    rng = random.Random(seed)
    words = [
        "agents",
        "reflect",
        "critique",
        "revise",
        "retrieve",
        "ground",
        "cite",
        "verify",
        "plan",
    ]
    return pb.WorkflowResult(text=" ".join(rng.choice(words) for _ in range(600)), score=8.0)


def _workflow(i: int) -> pb.Workflow:
    workflow = pb.Workflow(
        name=f"workflows/soak-{i:09d}",
        kind=pb.WORKFLOW_KIND_RESEARCH_REFLECTION,
        topic=f"soak topic {i % 500}",
        state=pb.WORKFLOW_STATE_RUNNING,
    )
    workflow.create_time.CopyFrom(timestamp())
    workflow.update_time.CopyFrom(workflow.create_time)
    return workflow


def _finish(
    workflow: pb.Workflow, i: int, rng: random.Random, pool: list[pb.WorkflowResult]
) -> None:
    roll = rng.random()
    if roll < 0.6:
        workflow.result.CopyFrom(pool[rng.randrange(len(pool))])
        workflow.cache.CopyFrom(pb.CacheInfo(hit=True, similarity=1.0))
        workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
    elif roll < 0.9:
        workflow.result.CopyFrom(_result(10_000 + i))
        workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
    else:
        workflow.state = pb.WORKFLOW_STATE_FAILED
        workflow.error.message = "no sources found"
    workflow.update_time.CopyFrom(timestamp())


async def _one(
    store: SqliteWorkflowStore | RedisWorkflowStore,
    log: SqliteEventLog | RedisEventLog,
    i: int,
    rng: random.Random,
    pool: list[pb.WorkflowResult],
) -> None:
    """One workflow's writes: RUNNING, its final record, its FINISHED event."""
    workflow = _workflow(i)
    await store.save(workflow)
    _finish(workflow, i, rng, pool)
    await store.save(workflow)
    await log.append(workflow.name, make_event(workflow, pb.WORKFLOW_EVENT_TYPE_FINISHED))


async def _size(kind: str, path: Path, client: aioredis.Redis | None) -> tuple[int, int]:
    """(live bytes, file bytes): SQLite pages in use and the file; Redis used_memory twice."""
    if client is not None:
        used = int((await client.info("memory"))["used_memory"])
        return used, used
    with sqlite3.connect(path) as db:
        pages, free, size = (
            db.execute(f"PRAGMA {pragma}").fetchone()[0]
            for pragma in ("page_count", "freelist_count", "page_size")
        )
    file_bytes = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return (pages - free) * size, file_bytes


async def soak(args: argparse.Namespace, root: Path) -> int:
    """Run the traffic and the retention; print samples; 0 when the size stays flat."""
    server: RedisServer | None = None
    client: aioredis.Redis | None = None
    path = root / "workflows.sqlite3"
    if args.store == "redis":
        server = RedisServer(root / "redis")
        server.start()
        client = aioredis.Redis.from_url(server.url)
        store: SqliteWorkflowStore | RedisWorkflowStore = RedisWorkflowStore(client)
        log: SqliteEventLog | RedisEventLog = RedisEventLog(client)
    else:
        store = SqliteWorkflowStore(path)
        log = SqliteEventLog(root / "workflows-events.sqlite3")
    retention = Retention(
        store, log, keep=timedelta(seconds=args.retention), every=args.sweep, batch=500
    )
    retention.start()
    rng = random.Random(3)
    pool = [_result(seed) for seed in range(50)]
    samples: list[tuple[float, int]] = []
    written = 0
    started = time.monotonic()
    next_sample = started + 10
    print("| t s | written | live bytes | file bytes |\n|---|---|---|---|")
    try:
        while (now := time.monotonic()) < started + args.seconds:
            due = int((now - started) * args.rate)
            batch = [_one(store, log, i, rng, pool) for i in range(written, due)]
            written = max(written, due)
            await asyncio.gather(*batch)
            if now >= next_sample:
                live, on_disk = await _size(args.store, path, client)
                samples.append((now - started, live))
                print(f"| {now - started:.0f} | {written:,} | {live:,} | {on_disk:,} |", flush=True)
                next_sample += 10
            await asyncio.sleep(0.05)
    finally:
        await retention.stop()
        await store.close()
        await log.close()
        if client is not None:
            await client.aclose()
        if server is not None:
            server.stop()
    third = max(1, len(samples) // 3)
    middle = [s for _, s in samples[third : 2 * third]] or [1]
    last = [s for _, s in samples[2 * third :]] or [1]
    ratio = (sum(last) / len(last)) / (sum(middle) / len(middle))
    print(
        f"\n{args.store}: last third / middle third mean live size = {ratio:.2f} (retention "
        f"{args.retention:g} s, {args.rate:g} workflows/s, {written:,} written)"
    )
    return 0 if ratio <= 1.2 else 1


def main() -> int:
    """Parse, soak."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--retention", type=float, default=20)
    parser.add_argument("--sweep", type=float, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ponder-soak-"))
    return asyncio.run(soak(args, root))


if __name__ == "__main__":
    sys.exit(main())
