"""The webhook sweep at scale: one pass over the records of the last hour, the way the sweep
found open deliveries before (every record that ended within twice the retry time, read and
checked in the gateway) against the stores' index of open deliveries (`due`), in one run.

Usage: nice .venv/bin/python bench/bench_webhook_sweep.py [--records 200000] [--open 0.01]
       [--store sqlite|redis] [--rounds 3]

Fills a store with `--records` finished records that ended within the last hour, a share
`--open` of them with a webhook delivery still open and due; then times a full pass of each
way (medians of `--rounds`) and checks both find the same deliveries. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_devstack.redis_server import RedisServer
from ponder_gateway.filters import parse
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore
from ponder_gateway.webhooks.state import OPEN_DELIVERY_STATES, due_at, mark_ended


RETRY_SECONDS = 3600.0  # PONDER_GATEWAY_WEBHOOK_RETRY_SECONDS' default
PAGE = 200
Store = SqliteWorkflowStore | RedisWorkflowStore


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def records(count: int, share: float, now: int) -> list[pb.Workflow]:
    """`count` cache-hit-sized records ended over the last hour; every 1/share-th one hooked."""
    every = max(1, round(1 / share)) if share > 0 else count + 1
    found = []
    for i in range(count):
        ended = now - 3600 + i * 3600 // count
        workflow = pb.Workflow(name=f"workflows/w{i:08d}", id=f"w{i:08d}", topic=f"topic {i}")
        workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
        workflow.create_time.FromSeconds(ended - 2)
        workflow.end_time.FromSeconds(ended)
        workflow.update_time.FromSeconds(ended)
        workflow.steps.add(name="cache_lookup", state=pb.STEP_STATE_SUCCEEDED, message="hit")
        if i % every == 0:
            workflow.notification.url = "https://hooks.example.com/ponder"
            mark_ended(workflow, workflow.end_time)
        found.append(workflow)
    return found


async def by_listing(store: Store, now: float) -> set[str]:
    """The sweep before the index: every record ended within twice the retry time."""
    ended = _rfc3339(now - 2 * RETRY_SECONDS)
    created = _rfc3339(now - 2 * RETRY_SECONDS - 86400)
    where = parse(
        f'create_time >= "{created}" AND update_time >= "{ended}" '
        "AND NOT (state = PENDING OR state = RUNNING)"
    )
    found: set[str] = set()
    after: tuple[int, str] | None = None
    while True:
        page = await store.list(where, limit=PAGE, after=after)
        found.update(
            w.name
            for w in page.workflows
            if w.HasField("notification") and w.notification_delivery.state in OPEN_DELIVERY_STATES
        )
        if page.next_after is None:
            return found
        after = page.next_after


async def by_index(store: Store, now: float) -> set[str]:
    """The sweep now: the store's index of open deliveries."""
    found: set[str] = set()
    after: tuple[int, str] | None = None
    while True:
        due = await store.due(int(now * 1e9), limit=PAGE, after=after)
        found.update(w.name for w in due)
        if len(due) < PAGE:
            return found
        after = (due_at(due[-1]) or 0, due[-1].name)


Sweep = Callable[[Store, float], Awaitable[set[str]]]


async def timed(sweep: Sweep, store: Store, now: float, rounds: int) -> tuple[float, set[str]]:
    """The median seconds of `rounds` passes, and what the last one found."""
    seconds: list[float] = []
    found: set[str] = set()
    for _ in range(rounds):
        started = time.perf_counter()
        found = await sweep(store, now)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), found


async def main() -> int:
    """Fill, sweep both ways, report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--open", type=float, default=0.01, help="share with an open delivery")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    now = int(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        server: RedisServer | None = None
        client: aioredis.Redis | None = None
        if args.store == "redis":
            server = RedisServer(Path(tmp) / "redis")
            server.start(timeout=60)
            client = aioredis.Redis.from_url(server.url)
            store: Store = RedisWorkflowStore(client)
        else:
            store = SqliteWorkflowStore(Path(tmp) / "workflows.sqlite3")
        try:
            batch = records(args.records, args.open, now)
            for start in range(0, len(batch), 20_000):
                await store.save_many(batch[start : start + 20_000])
            before, old = await timed(by_listing, store, now + 60, args.rounds)
            after, new = await timed(by_index, store, now + 60, args.rounds)
        finally:
            await store.close()
            if client is not None:
                await client.aclose()
            if server is not None:
                server.stop()
    print(f"\n{args.store}, {args.records:,} records ended in the last hour, "
          f"{len(new):,} open deliveries, medians of {args.rounds} passes\n")  # fmt: skip
    print("| sweep | one pass (s) | deliveries found |\n|---|---|---|")
    print(
        f"| every record of the window, checked in the gateway (before) | {before:.3f} "
        f"| {len(old):,} |"
    )
    print(f"| index of open deliveries (`due`) | {after:.4f} | {len(new):,} |")
    print(
        f"| **before / index** | **{before / after:.0f}x** | {'same' if old == new else 'DIFFER'} |"
    )
    return 0 if old == new else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
