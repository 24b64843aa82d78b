"""One INFO access line per RPC, in every service: method, final status code, duration, peer,
and (from the log filter, as the line is written inside the RPC's span) the trace id."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from ponder_runtime.interceptors import (
    HEALTH_PREFIX,
    Behavior,
    Continuation,
    Done,
    Handler,
    finished_stream,
    finished_unary,
    rewrap,
)
from ponder_runtime.metrics import final_status


logger = logging.getLogger(__name__)


def _line(method: str, peer: str) -> Done:
    def write(
        context: grpc.aio.ServicerContext[Any, Any], failure: BaseException | None, started: float
    ) -> None:
        logger.info(
            "rpc",
            extra={
                "rpc_method": method,
                "code": final_status(context, failure).name,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "peer": peer,
            },
        )

    return write


def _logged_unary(method: str, inner: Behavior) -> Behavior:
    """`inner` with its access line. The peer is read while the call is live: grpc's
    `context.peer()` after a cancelled stream has ended can crash the process (seen in CI)."""

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await finished_unary(_line(method, context.peer()), inner)(request, context)

    return unary


def _logged_stream(method: str, inner: Behavior) -> Behavior:
    """`inner` (a reply stream) with its access line; the peer is read first, as above."""

    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        replies = finished_stream(_line(method, context.peer()), inner)(request, context)
        async with contextlib.aclosing(replies):  # its line is written when this one ends
            async for item in replies:
                yield item

    return stream


class AccessLogInterceptor(grpc.aio.ServerInterceptor):
    """Writes the access line of every RPC but health checks once it ended. Runs inside the
    tracing interceptor (the line carries the trace id) and outside the error mapping (it
    sees the status the client gets)."""

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        """Wrap the handler's behaviour with the line."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(HEALTH_PREFIX):
            return handler
        return rewrap(
            handler,
            unary=lambda behavior: _logged_unary(method, behavior),
            stream=lambda behavior: _logged_stream(method, behavior),
        )
