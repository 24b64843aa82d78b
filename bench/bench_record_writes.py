"""Durable record writes alone: 10 concurrent writers of cache-hit records through the
store's `save` for 5 s (each save acknowledged on disk: SQLite WAL, synchronous=FULL, group
commit; Redis with `appendfsync always`, saves pipelined in groups), and the size after.

Usage: nice .venv/bin/python bench/bench_record_writes.py [DIR] [LABEL] [--store sqlite|redis]
(with an older checkout's sources first on PYTHONPATH it measures that version the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_devstack.redis_server import RedisServer
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore


def cache_hit() -> pb.Workflow:
    """A cache-hit record with a ~6 KB result, as a synchronous run records it."""
    rng = random.Random(1)
    words = ["agents", "reflect", "critique", "revise", "retrieve", "ground", "cite", "plan"]
    hit = pb.Workflow(
        name="workflows/x", kind=pb.WORKFLOW_KIND_RESEARCH_REFLECTION,
        state=pb.WORKFLOW_STATE_SUCCEEDED, topic="How do language agents use self-reflection?",
    )  # fmt: skip
    hit.result.text = " ".join(rng.choice(words) for _ in range(900))
    hit.cache.CopyFrom(
        pb.CacheInfo(
            hit=True, source_workflow="workflows/src",
            namespace="workflow/reflection/v1/abc/global",
        )
    )  # fmt: skip
    hit.steps.add(name="cache_lookup", state=pb.STEP_STATE_SUCCEEDED, message="hit (1.000)")
    hit.create_time.GetCurrentTime()
    hit.update_time.GetCurrentTime()
    return hit


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.glob("records.sqlite3*"))


async def main(root: Path, label: str, kind: str) -> None:
    """Write for 5 s from 10 coroutines; print saves/s and the size."""
    hit = cache_hit()
    server: RedisServer | None = None
    client: aioredis.Redis | None = None
    if kind == "redis":
        server = RedisServer(root / "redis")
        server.start()
        client = aioredis.Redis.from_url(server.url)
        store: SqliteWorkflowStore | RedisWorkflowStore = RedisWorkflowStore(client)
    else:
        store = SqliteWorkflowStore(root / "records.sqlite3")
    saves = 0

    async def writer(number: int, until: float) -> None:
        nonlocal saves
        index = 0
        while time.perf_counter() < until:
            workflow = pb.Workflow()
            workflow.CopyFrom(hit)
            workflow.name = f"workflows/w{number}-{index}"
            index += 1
            await store.save(workflow)
            saves += 1

    until, cpu = time.perf_counter() + 5, time.process_time()
    await asyncio.gather(*(writer(number, until) for number in range(10)))
    await store.close()
    cpu_us = (time.process_time() - cpu) / max(saves, 1) * 1e6  # this process: the gateway's side
    if client is not None and server is not None:
        used = int((await client.info("memory"))["used_memory"])
        await client.aclose()
        server.stop()
        print(
            f"{label}: {saves / 5:,.0f} durable saves/s (redis), {cpu_us:,.0f} µs CPU/save, "
            f"{used / max(saves, 1):,.0f} B/record in memory"
        )
        return
    size = _size(root)
    print(
        f"{label}: {saves / 5:,.0f} durable saves/s, {cpu_us:,.0f} µs CPU/save, "
        f"{size / max(saves, 1):,.0f} B/record on disk"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, default=None)
    parser.add_argument("label", nargs="?", default="this")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    args = parser.parse_args()
    target = args.dir or Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target, args.label, args.store))
