"""Benchmarks of the gateway (issue 6), the whole stack as processes, side by side in one run.

Usage: .venv/bin/python bench/bench_gateway.py [--workflows 1000] [--latency 2.0]

1. Cache-hit workflows over gRPC (the seed's cache hit took 420 ms): an exact repeat of a
   topic, and a paraphrase, vs the raw model's single-query encode time (torch, in-process).
2. `--workflows` concurrent long-running workflows (created at once, cache bypassed) against a
   slow LLM stand-in (every model call takes `--latency` s): how many complete, wall time, the
   gateway's peak RSS, and health-check latency during the load.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts, files_in
from ponder_devstack.fake_openai import Behaviour, serve_fake_openai
from ponder_devstack.measure import ms, rss_mib
from ponder_embedding.model import EmbeddingModel, ModelOptions


SUBJECTS = (
    "self-reflection", "retrieval", "chain-of-thought", "tool use", "self-consistency",
    "verbal feedback", "dense retrieval", "reranking", "memory", "critique",
)  # fmt: skip
# Rewordings the cache serves for the topic (the verifier accepts them; cosine >= 0.9):
# each is asked once, so every paraphrase lookup really embeds a new text.
REWORDINGS = (
    "How can language agents use {t} to improve their answers?",
    "How do language agents use {t} to make their answers better?",
    "In what way do language agents use {t} to improve their answers?",
    "How do language agents employ {t} to improve their answers?",
    "how do language agents use {t} to improve answers",
    "How do language agents utilize {t} to improve their answers?",
)
TOPICS = [f"How do language agents use {t} to improve their answers?" for t in SUBJECTS]
PARAPHRASES = [r.format(t=t) for r in REWORDINGS for t in SUBJECTS]


async def cache_hits(stub: workflow_grpc.WorkflowServiceStub) -> dict[str, list[float]]:
    """Seconds per cache-hit workflow: exact repeats and paraphrases."""
    for topic in TOPICS:  # fill the cache
        await stub.RunReflectionWorkflow(pb.RunReflectionWorkflowRequest(topic=topic), timeout=60)
    timings: dict[str, list[float]] = {"exact": [], "paraphrase": []}
    for kind, texts in (("exact", TOPICS * 10), ("paraphrase", PARAPHRASES)):
        for text in texts:
            started = time.perf_counter()
            reply = await stub.RunReflectionWorkflow(
                pb.RunReflectionWorkflowRequest(topic=text), timeout=60
            )
            timings[kind].append(time.perf_counter() - started)
            assert reply.workflow.cache.hit, (kind, text, reply.workflow.cache)
    return timings


async def load(
    stub: workflow_grpc.WorkflowServiceStub, channel: grpc.aio.Channel, count: int
) -> tuple[int, float, list[float]]:
    """Create `count` workflows at once; wait for all; health latencies meanwhile."""
    health = health_pb2_grpc.HealthStub(channel)
    params = pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS, max_iterations=1)
    started = time.perf_counter()
    created = await asyncio.gather(
        *(
            stub.CreateWorkflow(
                pb.CreateWorkflowRequest(
                    workflow=pb.Workflow(
                        kind=pb.WORKFLOW_KIND_REFLECTION,
                        topic=f"{TOPICS[i % len(TOPICS)]} ({i})",
                        parameters=params,
                    )
                ),
                timeout=120,
            )
            for i in range(count)
        )
    )
    names = {reply.workflow.name for reply in created}
    latencies: list[float] = []
    succeeded = 0
    while True:
        probe = time.perf_counter()
        await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        latencies.append(time.perf_counter() - probe)
        page = await stub.ListWorkflows(
            pb.ListWorkflowsRequest(page_size=100, filter="state = RUNNING OR state = PENDING"),
            timeout=30,
        )
        if not {w.name for w in page.workflows} & names:
            break
        await asyncio.sleep(0.05)
    wall = time.perf_counter() - started
    for name in names:
        got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), timeout=30)
        succeeded += got.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    return succeeded, wall, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=2.0)
    args = parser.parse_args()
    raw_model = await EmbeddingModel.load(ModelOptions(device="cpu", backend="torch"))
    raw = []
    for text in PARAPHRASES:
        started = time.perf_counter()
        await raw_model.encode([text])
        raw.append(time.perf_counter() - started)
    raw_model.close()
    fake = serve_fake_openai()
    lines = ["| measurement | value |", "|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack = Stack(
            ports=StackPorts.free(),
            log_dir=root,
            extra_env={
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": fake.base_url,
                "PONDER_REFLECTION_MAX_CONCURRENCY": str(args.workflows * 2),
                "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
                # Every exact repeat a new workflow answered by the cache, not a replay of the
                # first one (bench_rest.py measures replays).
                "PONDER_GATEWAY_REPLAY_SECONDS": "0",
                "PONDER_GATEWAY_MAX_RUNNING_WORKFLOWS": str(args.workflows),
                "PONDER_GATEWAY_MAX_QUEUED_WORKFLOWS": str(args.workflows),
                **files_in(root),
                "PONDER_LOG_LEVEL": "WARNING",
            },
        )
        stack.start()
        try:
            await stack.wait_ready(timeout=120)
            gateway = next(s for s in stack.services if s.name == "gateway")
            async with grpc.aio.insecure_channel(gateway.address) as channel:
                stub = workflow_grpc.WorkflowServiceStub(channel)
                hits = await cache_hits(stub)
                fake.behaviour = Behaviour(latency=args.latency)
                done, wall, health = await load(stub, channel, args.workflows)
            assert gateway.process is not None
            rss = rss_mib(gateway.process.pid, peak=True)
        finally:
            stack.stop()
            fake.close()
    raw_p50 = ms(raw, 50)
    lines += [
        f"| raw model (torch) single-query encode p50 (ms) | {raw_p50:.1f} |",
        f"| cache hit, exact repeat p50 / p99 (ms) (target ≤ 10 / ≤ 30) | "
        f"**{ms(hits['exact'], 50):.1f} / {ms(hits['exact'], 99):.1f}** |",
        f"| cache hit, paraphrase p50 / p99 (ms) (target p50 ≤ raw + 15 = "
        f"{raw_p50 + 15:.1f}) | **{ms(hits['paraphrase'], 50):.1f}** / "
        f"{ms(hits['paraphrase'], 99):.1f} |",
        f"| {args.workflows} concurrent workflows, model calls {args.latency:g} s: succeeded | "
        f"**{done} / {args.workflows}** |",
        f"| {args.workflows} concurrent workflows: wall time (ideal 2 calls x "
        f"{args.latency:g} s) | {wall:.1f} s |",
        f"| {args.workflows} concurrent workflows: gateway peak RSS (target < 250 MiB) | "
        f"**{rss:.0f} MiB** |",
        f"| {args.workflows} concurrent workflows: health check p50 / p99 during load (ms) "
        f"(target p99 < 50) | {ms(health, 50):.1f} / **{ms(health, 99):.1f}** |",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
