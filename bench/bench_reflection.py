"""Benchmark of the reflection service under many concurrent reflections (issue 5).

Usage: .venv/bin/python bench/bench_reflection.py [--reflections 1000] [--latency 2.0]

The service runs as its own process on the OpenAI-compatible provider, pointed at a local
stand-in (`ponder_devstack.fake_openai`) that answers every call after a fixed latency. Each
reflection is one draft and one critique (max_iterations=1): two model calls.
1. `--reflections` concurrent reflections with the concurrency limit raised to match:
   completed count, wall time vs the ideal (2 x latency), peak RSS of the service.
2. 64 concurrent reflections with the default limit of 8: queueing (peak upstream
   concurrency), wall time vs the ideal (64 x 2 calls / 8 slots x latency), errors.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc

from ponder.reflection.v1 import reflection_service_pb2 as pb
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.type.v1 import document_pb2
from ponder_devstack.fake_openai import Behaviour, FakeOpenAI, serve_fake_openai
from ponder_devstack.measure import rss_mib
from ponder_devstack.stack import only_service
from ponder_runtime.internal_auth import token_client_interceptors


# The services check a shared token on direct calls (ponder_runtime.internal_auth).
INTERNAL_TOKEN = secrets.token_urlsafe(32)
TOKEN_SENDERS = token_client_interceptors(INTERNAL_TOKEN)


DOCUMENTS = [
    document_pb2.Document(
        id=f"arxiv:2303.1136{i}",
        title=f"Source {i} on self-reflection",
        summary="Agents reflect on failures and store verbal feedback in memory. " * 3,
    )
    for i in range(4)
]


async def run_batch(address: str, count: int, deadline: float) -> tuple[float, Counter[str]]:
    """`count` concurrent reflections; wall time and outcome counts."""
    request = pb.ReflectRequest(
        topic="How do agents use self-reflection?", documents=DOCUMENTS, max_iterations=1
    )
    outcomes: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(address, interceptors=TOKEN_SENDERS) as channel:
        stub = reflection_grpc.ReflectionServiceStub(channel)

        async def one() -> None:
            try:
                reply = await stub.Reflect(request, timeout=deadline)
                outcomes["ok" if reply.text else "empty"] += 1
            except grpc.aio.AioRpcError as exc:
                outcomes[exc.code().name] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return time.perf_counter() - started, outcomes


async def scenario(
    fake: FakeOpenAI, root: Path, *, count: int, limit: int, latency: float
) -> list[str]:
    """Start the service with `limit`, run `count` reflections, report."""
    fake.reset()
    fake.behaviour = Behaviour(latency=latency)
    env = {
        "PONDER_INTERNAL_TOKEN": INTERNAL_TOKEN,  # what the gateway sends in production
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": fake.base_url,
        "PONDER_REFLECTION_MODEL": "bench-model",
        "PONDER_REFLECTION_MAX_CONCURRENCY": str(limit),
        "PONDER_LOG_LEVEL": "WARNING",
    }
    log_dir = root / f"logs-{limit}"
    async with only_service("reflection", log_dir, env, timeout=60) as (address, pid):
        waves = -(-count * 2 // limit)  # two calls per reflection, `limit` at a time
        ideal = waves * latency
        wall, outcomes = await run_batch(address, count, deadline=ideal * 3 + 30)
        rss = rss_mib(pid, peak=True)
    errors = sum(n for k, n in outcomes.items() if k != "ok")
    label = f"{count} reflections, limit {limit}"
    return [
        f"| {label}: completed / errors | {outcomes['ok']} / {errors} |",
        f"| {label}: wall time vs ideal ({waves} waves x {latency:g} s) | "
        f"{wall:.1f} s vs {ideal:.1f} s ({wall / ideal:.2f}x) |",
        f"| {label}: peak upstream concurrency seen by the model server | {fake.max_in_flight} |",
        f"| {label}: peak RSS of the service (target < 250 MiB) | **{rss:.0f} MiB** |",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reflections", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=2.0)
    args = parser.parse_args()
    fake = serve_fake_openai()
    lines = ["| measurement | value |", "|---|---|"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            lines += await scenario(
                fake, root, count=args.reflections, limit=args.reflections, latency=args.latency
            )
            lines += await scenario(fake, root, count=64, limit=8, latency=args.latency)
    finally:
        fake.close()
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
