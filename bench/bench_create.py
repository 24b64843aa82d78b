"""CreateWorkflow to its reply against a real stack: a miss (a topic never asked, looked up
before it is recorded) and a hit only the embedding service's LookupCache finds (a paraphrase
of a topic run before, which the gateway's first level does not hold).

Usage: nice .venv/bin/python bench/bench_create.py [--misses 200] [--warmup 10]
(with an older checkout's sources first on PYTHONPATH it measures that version the same way).

Starts the four services as processes (ponder_devstack's Stack, replays off, rate limits off,
logs at WARNING), waits until the library answers, then creates one workflow at a time, each
timed to its reply and watched to its end before the next: `--warmup` + `--misses` fresh
reflection topics, then the eight subjects once in a first wording and 32 paraphrases of them.
Prints the percentiles, the final states, and how many paraphrases were cache hits.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import temporary_stack
from ponder_devstack.measure import ms


SUBJECTS = (
    "self-reflection", "retrieval", "chain-of-thought", "tool use", "self-consistency",
    "verbal feedback", "dense retrieval", "reranking",
)  # fmt: skip
WORDINGS = (
    "How can language agents use {} to improve their answers?",
    "How do language agents use {} to make their answers better?",
    "In what way do language agents use {} to improve their answers?",
    "How do language agents employ {} to improve their answers?",
    "How do language agents utilize {} to improve their answers?",
)
FINAL = (pb.WORKFLOW_STATE_SUCCEEDED, pb.WORKFLOW_STATE_FAILED, pb.WORKFLOW_STATE_CANCELLED)


async def created(stub: workflow_grpc.WorkflowServiceStub, topic: str) -> tuple[float, pb.Workflow]:
    """Seconds to the create's reply, and the workflow at its end."""
    request = pb.CreateWorkflowRequest(
        workflow=pb.Workflow(kind=pb.WORKFLOW_KIND_REFLECTION, topic=topic)
    )
    started = time.perf_counter()
    reply = await stub.CreateWorkflow(request, timeout=30)
    took = time.perf_counter() - started
    final = reply.workflow
    if final.state not in FINAL:
        watch = pb.WatchWorkflowRequest(name=final.name)
        async for event in stub.WatchWorkflow(watch, timeout=120):
            final = event.workflow
    return took, final


async def ready(stub: workflow_grpc.WorkflowServiceStub) -> None:
    """Until a reflection on the library succeeds (the library is indexed)."""
    deadline = time.monotonic() + 300
    while True:
        topic = f"How do language agents use self-reflection ({uuid.uuid4().hex[:6]})?"
        _, final = await created(stub, topic)
        if final.state == pb.WORKFLOW_STATE_SUCCEEDED:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no reflection succeeded: {final.error.message}")
        await asyncio.sleep(1)


def line(label: str, seconds: list[float]) -> str:
    """One row of percentiles in milliseconds."""
    return (
        f"{label}: n={len(seconds)} p50 {ms(seconds, 50):.2f} ms, p90 {ms(seconds, 90):.2f} ms, "
        f"p99 {ms(seconds, 99):.2f} ms, max {max(seconds) * 1000:.1f} ms"
    )


async def measure(stub: workflow_grpc.WorkflowServiceStub, args: argparse.Namespace) -> None:
    """Misses, then paraphrases; print the rows."""
    await ready(stub)
    misses: list[float] = []
    states: Counter[str] = Counter()
    for index in range(args.warmup + args.misses):
        subject = SUBJECTS[index % len(SUBJECTS)]
        took, final = await created(
            stub, f"How do language agents use {subject} ({uuid.uuid4().hex[:8]})?"
        )
        if final.cache.hit:
            raise RuntimeError(f"a fresh topic was a cache hit: {final.cache}")
        if index >= args.warmup:
            misses.append(took)
            states[pb.WorkflowState.Name(final.state)] += 1
    for subject in SUBJECTS:  # the first wording runs; its exact repeats are first-level hits
        await created(stub, WORDINGS[0].format(subject))
    hits: list[float] = []
    hit_count = 0
    for wording in WORDINGS[1:]:
        for subject in SUBJECTS:
            took, final = await created(stub, wording.format(subject))
            hits.append(took)
            hit_count += final.cache.hit
    print(line("miss creates", misses) + f"; final states {dict(states)}")
    print(line("paraphrase creates", hits) + f"; {hit_count} of {len(hits)} cache hits")


async def main() -> None:
    """Start the stack, measure, stop."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--misses", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    env = {
        "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        "PONDER_GATEWAY_REPLAY_SECONDS": "0",
        "PONDER_LOG_LEVEL": "WARNING",
    }
    async with (
        temporary_stack(env) as stack,
        grpc.aio.insecure_channel(stack.service("gateway").address) as channel,
    ):
        await measure(workflow_grpc.WorkflowServiceStub(channel), args)


if __name__ == "__main__":
    asyncio.run(main())
