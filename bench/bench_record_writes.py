"""Durable record writes alone: 10 concurrent writers of cache-hit records through
`SqliteWorkflowStore.save` for 5 s (each save acknowledged on disk: WAL, synchronous=FULL,
group commit), and the file size after.

Usage: nice .venv/bin/python bench/bench_record_writes.py [DIR] [LABEL]
(with an older checkout's sources first on PYTHONPATH it measures that version the same way).
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from ponder.workflow.v1 import workflow_service_pb2 as pb
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


async def main(root: Path, label: str) -> None:
    """Write for 5 s from 10 coroutines; print saves/s and the size."""
    hit = cache_hit()
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

    until = time.perf_counter() + 5
    await asyncio.gather(*(writer(number, until) for number in range(10)))
    await store.close()
    size = _size(root)
    print(
        f"{label}: {saves / 5:,.0f} durable saves/s, {size / max(saves, 1):,.0f} B/record on disk"
    )


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target, sys.argv[2] if len(sys.argv) > 2 else "this"))
