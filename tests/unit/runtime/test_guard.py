"""GuardInterceptor: the guard runs before every method outside the open prefixes, whatever
the method's shape (a client-streaming method added later is not let through unchecked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from ponder_runtime.errors import PonderError
from ponder_runtime.interceptors import ErrorMappingInterceptor, GuardInterceptor


class Refused(PonderError):
    """What the test guard raises without the right metadata."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


async def guard(context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
    if ("key", "ok") not in tuple(context.invocation_metadata() or ()):
        raise Refused(f"no key for {method}")


async def count(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> bytes:
    return str(len([r async for r in requests])).encode()


async def echo(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]):
    async for request in requests:
        yield request


async def open_count(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> bytes:
    return await count(requests, context)


@pytest.fixture
async def address() -> AsyncIterator[str]:
    server = grpc.aio.server(
        interceptors=[ErrorMappingInterceptor(), GuardInterceptor(guard, open_prefixes=("/open.",))]
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "closed.Streams",
                {
                    "Count": grpc.stream_unary_rpc_method_handler(count),
                    "Echo": grpc.stream_stream_rpc_method_handler(echo),
                },
            ),
            grpc.method_handlers_generic_handler(
                "open.Streams", {"Count": grpc.stream_unary_rpc_method_handler(open_count)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def _silent() -> AsyncIterator[bytes]:
    """A request stream that sends nothing until the call ends."""
    await asyncio.Event().wait()
    yield b""


async def test_client_and_bidi_streaming_methods_are_guarded(address: str):
    messages = [b"a", b"b", b"c"]
    async with grpc.aio.insecure_channel(address) as channel:
        count_call: grpc.aio.StreamUnaryMultiCallable[bytes, bytes]
        count_call = channel.stream_unary("/closed.Streams/Count")
        echo_call: grpc.aio.StreamStreamMultiCallable[bytes, bytes]
        echo_call = channel.stream_stream("/closed.Streams/Echo")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            # no messages while the refusal travels back: a message sent after the server
            # ended the call fails on the client (INTERNAL, "execute_batch") under load
            await count_call(_silent(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "no key for /closed.Streams/Count" in (refused.value.details() or "")
        refused_echo = echo_call(timeout=5)  # refused before it reads a message
        assert await refused_echo.code() == grpc.StatusCode.UNAUTHENTICATED
        key = (("key", "ok"),)
        assert await count_call(iter(messages), timeout=5, metadata=key) == b"3"
        replies = [reply async for reply in echo_call(iter(messages), timeout=5, metadata=key)]
        assert replies == messages
        open_call: grpc.aio.StreamUnaryMultiCallable[bytes, bytes]
        open_call = channel.stream_unary("/open.Streams/Count")
        assert await open_call(iter(messages), timeout=5) == b"3"
