"""Internal channels stop calling a peer that is down: a circuit breaker per channel."""

from __future__ import annotations

import asyncio
import signal

import grpc

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder_runtime import ChannelFactory, ServiceSettings, configure_telemetry, load_settings
from tests.support.clock import Clock
from tests.support.processes import service_process


async def _outcome(stub: reflection_grpc.ReflectionServiceStub, timeout: float = 0.5) -> str:
    """How one Reflect call ended: OK, DEADLINE_EXCEEDED (it waited), or BREAKER (refused
    without reaching the peer)."""
    try:
        await stub.Reflect(
            reflection_pb2.ReflectRequest(topic="dense retrieval", max_iterations=1),
            timeout=timeout,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNAVAILABLE and "circuit breaker" in (exc.details() or ""):
            return "BREAKER"
        name: str = exc.code().name
        return name
    return "OK"


async def _streamed(stub: reflection_grpc.ReflectionServiceStub) -> str:
    """How one StreamReflect call ended, named as `_outcome` names it."""
    request = reflection_pb2.StreamReflectRequest(topic="dense retrieval", max_iterations=1)
    try:
        async for _ in stub.StreamReflect(request, timeout=0.5):
            pass
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNAVAILABLE and "circuit breaker" in (exc.details() or ""):
            return "BREAKER"
        name: str = exc.code().name
        return name
    return "OK"


async def test_a_hung_peer_costs_three_waits_then_calls_fail_fast_until_it_answers(tmp_path):
    """With the reflection process stopped (SIGSTOP), the first three calls wait out their
    timeout and the next ones (streaming calls too) are refused at once; after the reset time
    one trial call goes through, and once the process continues (SIGCONT) calls work again."""
    clock = Clock()
    settings = load_settings(ServiceSettings, service_name="test")
    factory = ChannelFactory(
        configure_telemetry(settings),
        breaker_threshold=3,
        breaker_reset_seconds=5.0,
        slow_call_seconds=0.2,
        clock=clock,
    )
    async with service_process("reflection", tmp_path) as reflection:
        stub = reflection_grpc.ReflectionServiceStub(factory.channel(reflection.address))
        try:
            assert await _outcome(stub) == "OK"
            reflection.process.send_signal(signal.SIGSTOP)
            outcomes = [await _outcome(stub) for _ in range(8)]
            assert outcomes == ["DEADLINE_EXCEEDED"] * 3 + ["BREAKER"] * 5
            assert await _streamed(stub) == "BREAKER"  # streaming calls share the breaker
            clock.now += 5.0  # half-open: one trial, which the stopped peer fails again
            assert [await _outcome(stub) for _ in range(2)] == ["DEADLINE_EXCEEDED", "BREAKER"]
            reflection.process.send_signal(signal.SIGCONT)
            clock.now += 5.0
            assert [await _outcome(stub) for _ in range(2)] == ["OK", "OK"]
        finally:
            reflection.process.send_signal(signal.SIGCONT)
            await factory.close()


async def test_a_call_with_deadline_to_spare_waits_out_the_open_breaker(tmp_path):
    """Once the breaker opened on a hung peer that then recovers, a call whose deadline
    outlasts the open window (plus the slow-call time) waits for it and succeeds, and so do
    two such calls at once (one is the trial, the other waits for it); a call with too short
    a deadline is still refused at once, and while the peer stays hung a waiting call waits
    for one failed trial only, not its whole deadline."""
    settings = load_settings(ServiceSettings, service_name="test")
    factory = ChannelFactory(
        configure_telemetry(settings),
        breaker_threshold=3,
        breaker_reset_seconds=0.5,
        slow_call_seconds=0.2,
    )
    async with service_process("reflection", tmp_path) as reflection:
        stub = reflection_grpc.ReflectionServiceStub(factory.channel(reflection.address))
        try:
            assert await _outcome(stub) == "OK"
            reflection.process.send_signal(signal.SIGSTOP)
            assert [await _outcome(stub) for _ in range(3)] == ["DEADLINE_EXCEEDED"] * 3
            reflection.process.send_signal(signal.SIGCONT)
            assert await _outcome(stub, timeout=0.3) == "BREAKER"
            assert await _outcome(stub, timeout=30) == "OK"
            reflection.process.send_signal(signal.SIGSTOP)
            assert [await _outcome(stub) for _ in range(3)] == ["DEADLINE_EXCEEDED"] * 3
            reflection.process.send_signal(signal.SIGCONT)
            both = await asyncio.gather(_outcome(stub, timeout=30), _outcome(stub, timeout=30))
            assert list(both) == ["OK", "OK"]
            reflection.process.send_signal(signal.SIGSTOP)
            assert [await _outcome(stub) for _ in range(3)] == ["DEADLINE_EXCEEDED"] * 3
            await asyncio.sleep(0.6)  # the open window is over: the next call is the trial
            trial = asyncio.ensure_future(_outcome(stub, timeout=1.0))
            await asyncio.sleep(0.1)
            # Still hung: this call waits for that trial, which times out, and is refused.
            assert await _outcome(stub, timeout=30) == "BREAKER"
            assert await trial == "DEADLINE_EXCEEDED"
        finally:
            reflection.process.send_signal(signal.SIGCONT)
            await factory.close()
