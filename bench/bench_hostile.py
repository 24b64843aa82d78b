"""Hostile clients against the gateway: health latency and gateway memory, quiet vs attacked.

Usage: nice .venv/bin/python bench/bench_hostile.py [--seconds 20] [--loris 1000] [--idle 1000]

The stack of real processes (offline reflection) with the gateway's default limits. Health is
probed every 20 ms over REST (a new connection per probe: GET /healthz) and gRPC (Health.Check
on one channel), first for `--seconds` with no attack, then for `--seconds` while an attacker
process (this script with --attack) holds `--loris` slow-loris connections (a header byte a
second, reopened when closed), `--idle` connections that send nothing, 10 loops of 1 MiB
request headers, 10 loops of 1 MiB gRPC metadata and 200 idle gRPC channels. Reports health
p50 / p99 / max for both periods, what the attacker was answered, and the gateway's RSS.
Target (issue 22): health p99 under 100 ms during the attack, memory bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder_devstack import Stack, StackPorts, files_in
from ponder_devstack.fake_apis import serve_fake_arxiv, serve_fake_tavily
from ponder_devstack.measure import percentile
from ponder_runtime.runtime_metrics import resident_bytes


async def rest_probe(port: int) -> float:
    """One GET /healthz on a new connection; seconds until the whole answer is in."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
    return time.perf_counter() - started


async def probe(gateway: str, http_port: int, seconds: float) -> dict[str, list[float]]:
    """Health latencies over REST and gRPC, one probe each every 20 ms for `seconds`."""
    times: dict[str, list[float]] = {"rest": [], "grpc": []}
    async with grpc.aio.insecure_channel(gateway) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            times["rest"].append(await rest_probe(http_port))
            started = time.perf_counter()
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
            times["grpc"].append(time.perf_counter() - started)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            await asyncio.sleep(0.02)
    return times


# -- the attacker (a separate process, so that its work does not slow the probes) ----------


async def _answer(reader: asyncio.StreamReader) -> str:
    try:
        head = await reader.read()
    except ConnectionError:
        return "reset"
    return head.split(b"\r\n", 1)[0].decode(errors="replace")[9:] or "closed"


async def loris(port: int, seen: Counter[str], until: float) -> None:
    """Trickle header bytes, one a second; reconnect when answered."""
    while time.monotonic() < until:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        answer = asyncio.ensure_future(_answer(reader))
        while not answer.done() and time.monotonic() < until:
            writer.write(b"X")
            await asyncio.wait([answer], timeout=1.0)
        if answer.done():
            seen[f"loris: {answer.result()}"] += 1
        answer.cancel()
        writer.close()


async def idle(port: int, seen: Counter[str], until: float) -> None:
    """Open a connection and send nothing; reconnect when answered."""
    while time.monotonic() < until:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(max(0.0, until - time.monotonic())):
                seen[f"idle: {await _answer(reader)}"] += 1
        except TimeoutError:
            pass
        writer.close()


async def big_headers(port: int, seen: Counter[str], until: float) -> None:
    """Requests with 1 MiB of headers, one after the other."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    while time.monotonic() < until:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            await writer.drain()
        except ConnectionError:
            pass
        seen[f"big headers: {await _answer(reader)}"] += 1
        writer.close()


async def big_metadata(gateway: str, seen: Counter[str], until: float) -> None:
    """gRPC calls with 1 MiB of metadata, one after the other."""
    options = [("grpc.max_metadata_size", 4 << 20), ("grpc.absolute_max_metadata_size", 4 << 20)]
    async with grpc.aio.insecure_channel(gateway, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < until:
            try:
                await stub.Check(
                    health_pb2.HealthCheckRequest(), metadata=[("x-big", "a" * (1 << 20))]
                )
                seen["big metadata: OK"] += 1
            except grpc.aio.AioRpcError as exc:
                seen[f"big metadata: {exc.code().name}"] += 1


async def idle_channels(gateway: str, count: int, until: float) -> None:
    """`count` connected gRPC channels that make no call."""
    channels = [grpc.aio.insecure_channel(gateway) for _ in range(count)]
    await asyncio.gather(*(c.channel_ready() for c in channels))
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    for channel in channels:
        await channel.close()


async def attack(args: argparse.Namespace) -> None:
    """Run every attack until the time is up; print what was answered, as JSON. Runs at a
    lower priority: a real attacker's CPU is not the gateway's (here they share two cores)."""
    os.nice(10)
    seen: Counter[str] = Counter()
    until = time.monotonic() + args.seconds
    await asyncio.gather(
        *(loris(args.http_port, seen, until) for _ in range(args.loris)),
        *(idle(args.http_port, seen, until) for _ in range(args.idle)),
        *(big_headers(args.http_port, seen, until) for _ in range(10)),
        *(big_metadata(args.gateway, seen, until) for _ in range(10)),
        idle_channels(args.gateway, 200, until),
        return_exceptions=True,
    )
    print(json.dumps(seen))


# -- the run -------------------------------------------------------------------------------


def _row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"| {name} | {len(ms)} | {percentile(ms, 0.5):.1f} | {percentile(ms, 0.99):.1f} | "
        f"{max(ms):.1f} |"
    )


async def main(args: argparse.Namespace) -> None:
    """Start the stack, probe quiet, probe attacked, report."""
    arxiv, tavily = serve_fake_arxiv(), serve_fake_tavily()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack = Stack(
            ports=StackPorts.free(),
            log_dir=root,
            extra_env={
                "PONDER_LOG_LEVEL": "WARNING",
                "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
                "PONDER_GATEWAY_HTTP_ACCESS_LOG": "false",
                **files_in(root),
                "PONDER_RESEARCH_ARXIV_API_URL": f"{arxiv.base_url}/api/query",
                "PONDER_RESEARCH_TAVILY_API_URL": tavily.base_url,
                "TAVILY_API_KEY": "tvly-bench",
            },
        )
        stack.start()
        try:
            await stack.wait_ready(timeout=240)
            gateway, http_port = stack.service("gateway").address, stack.ports.gateway_http
            pid = stack.service("gateway").process.pid  # type: ignore[union-attr]
            rss_before = resident_bytes(pid) or 0
            quiet = await probe(gateway, http_port, args.seconds)
            attacker = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--attack", "--gateway", gateway,
                "--http-port", str(http_port), "--seconds", str(args.seconds + 5),
                "--loris", str(args.loris), "--idle", str(args.idle),
                stdout=subprocess.PIPE,
            )  # fmt: skip
            await asyncio.sleep(5)  # let the attack build up
            rss_peak = 0
            probing = asyncio.ensure_future(probe(gateway, http_port, args.seconds))
            while not probing.done():
                rss_peak = max(rss_peak, resident_bytes(pid) or 0)
                await asyncio.sleep(0.5)
            attacked = probing.result()
            out, _ = await attacker.communicate()
            seen = json.loads(out or b"{}")
            await asyncio.sleep(12)  # past the header timeout: what the attack held is gone
            rss_after = resident_bytes(pid) or 0
        finally:
            stack.stop()
            arxiv.close()
            tavily.close()
    print("| health probe | probes | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    print(_row("REST /healthz, quiet", quiet["rest"]))
    print(
        _row(f"REST /healthz, attacked ({args.loris} loris + {args.idle} idle)", attacked["rest"])
    )
    print(_row("gRPC Health.Check, quiet", quiet["grpc"]))
    print(_row("gRPC Health.Check, attacked", attacked["grpc"]))
    mib = 1 << 20
    print(
        f"\ngateway RSS: {rss_before / mib:.0f} MiB before, {rss_peak / mib:.0f} MiB peak "
        f"during the attack, {rss_after / mib:.0f} MiB after"
    )
    print("attacker was answered: " + ", ".join(f"{k} x{v}" for k, v in sorted(seen.items())))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--loris", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--attack", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gateway", help=argparse.SUPPRESS)
    parser.add_argument("--http-port", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    asyncio.run(attack(arguments) if arguments.attack else main(arguments))
