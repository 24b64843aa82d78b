"""What the temporal engine costs against the local one, side by side in one run.

Usage: .venv/bin/python bench/bench_temporal.py [--sequential 20] [--concurrent 200]
       [--latency 1.0] [--workers 2]

Both gateways run as processes over the same research, embedding and reflection services
(reflection on the fake OpenAI server); the temporal one has `--workers` worker processes.
1. Latency per workflow: `--sequential` RunReflectionWorkflow calls one after another (cache
   bypassed, one iteration, instant model), p50 on each engine; the difference is what
   Temporal adds (a start, five activities, the local activities that record steps).
2. Throughput: `--concurrent` workflows created at once with every model call taking
   `--latency` s; workflows per second from the first create to the last final record.
3. Memory: peak RSS of each gateway and of each worker.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.engine_rig import Rig, rig, wait_all
from ponder_devstack.fake_openai import Behaviour, serve_fake_openai
from ponder_devstack.measure import rss_mib


ENGINES = ("local", "temporal")
PARAMS = pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS, max_iterations=1)


def spec(topic: str) -> pb.Workflow:
    """A one-iteration reflection workflow, cache bypassed."""
    return pb.Workflow(kind=pb.WORKFLOW_KIND_REFLECTION, topic=topic, parameters=PARAMS)


async def sequential(stub: workflow_grpc.WorkflowServiceStub, count: int, tag: str) -> list[float]:
    """Seconds per synchronous workflow, one after another."""
    timings = []
    for i in range(count):
        started = time.perf_counter()
        reply = await stub.RunWorkflow(
            pb.RunWorkflowRequest(workflow=spec(f"self-reflection in agents {tag} {i % 5}")),
            timeout=120,
        )
        timings.append(time.perf_counter() - started)
        assert reply.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    return timings


async def concurrent(
    stub: workflow_grpc.WorkflowServiceStub, count: int, tag: str
) -> tuple[int, float]:
    """Create `count` workflows at once; (succeeded, wall seconds until all are final)."""
    started = time.perf_counter()
    created = await asyncio.gather(
        *(
            stub.CreateWorkflow(
                pb.CreateWorkflowRequest(workflow=spec(f"retrieval for agents {tag} {i}")),
                timeout=120,
            )
            for i in range(count)
        )
    )
    final = await wait_all(stub, [r.workflow.name for r in created], timeout=900)
    wall = time.perf_counter() - started
    for workflow in final.values():
        if workflow.state != pb.WORKFLOW_STATE_SUCCEEDED:
            print(f"  {tag}: {workflow.name} {workflow.error.message[:160]}", file=sys.stderr)
    return sum(w.state == pb.WORKFLOW_STATE_SUCCEEDED for w in final.values()), wall


async def measure(bench: Rig, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Every measurement on both engines."""
    results: dict[str, dict[str, float]] = {}
    for engine in ENGINES:
        async with grpc.aio.insecure_channel(bench.address(engine)) as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            await sequential(stub, 3, f"warm-{engine}")
            timings = await sequential(stub, args.sequential, engine)
            results[engine] = {"p50": statistics.median(timings)}
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fake = serve_fake_openai()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with rig(Path(tmp), fake, workers=args.workers, capacity=args.concurrent) as bench:
            results = await measure(bench, args)
            fake.behaviour = Behaviour(latency=args.latency)
            for engine in ENGINES:
                async with grpc.aio.insecure_channel(bench.address(engine)) as channel:
                    stub = workflow_grpc.WorkflowServiceStub(channel)
                    done, wall = await concurrent(stub, args.concurrent, engine)
                results[engine].update(done=done, wall=wall)
            for engine, stack in (("local", bench.stack), ("temporal", bench.temporal_gateway)):
                process = stack.service("gateway").process
                assert process is not None
                results[engine]["gateway_rss"] = rss_mib(process.pid, peak=True)
            workers = [rss_mib(p.pid, peak=True) for p in bench.workers.running()]
    fake.close()
    local, temporal = results["local"], results["temporal"]
    n = args.concurrent
    lines = [
        "| measurement | local engine | temporal engine | ratio |",
        "|---|---|---|---|",
        f"| workflow latency p50, sequential, instant model (ms) | {local['p50'] * 1000:.0f} | "
        f"{temporal['p50'] * 1000:.0f} | {temporal['p50'] / local['p50']:.2f}x "
        f"(+{(temporal['p50'] - local['p50']) * 1000:.0f} ms) |",
        f"| {n} concurrent workflows, model {args.latency:g} s/call: succeeded | "
        f"{local['done']:.0f} / {n} | {temporal['done']:.0f} / {n} | |",
        f"| {n} concurrent: workflows per second | {local['done'] / local['wall']:.1f} | "
        f"{temporal['done'] / temporal['wall']:.1f} | "
        f"{(temporal['done'] / temporal['wall']) / (local['done'] / local['wall']):.2f}x |",
        f"| gateway peak RSS (MiB) | {local['gateway_rss']:.0f} | "
        f"{temporal['gateway_rss']:.0f} | |",
        f"| worker peak RSS, each of {len(workers)} (MiB) | - | "
        f"{', '.join(f'{w:.0f}' for w in workers)} | |",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
