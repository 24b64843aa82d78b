"""One INFO access line per RPC, in every service: method, final status code, duration, peer,
and (from the log filter, as the line is written inside the RPC's span) the trace id."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc

from ponder_runtime.interceptors import (
    Behavior,
    Done,
    Wrap,
    WrappingInterceptor,
    finished_stream,
    finished_unary,
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


class AccessLogInterceptor(WrappingInterceptor):
    """Writes the access line of every RPC but health checks once it ended. Runs inside the
    tracing interceptor (the line carries the trace id) and outside the error mapping (it
    sees the status the client gets)."""

    def wraps(self, method: str) -> tuple[Wrap, Wrap]:
        """Wrap the handler's behaviour with the line."""
        return partial(_logged_unary, method), partial(_logged_stream, method)
