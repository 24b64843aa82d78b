"""One INFO access line per RPC, in every service: method, final status code, duration, peer,
and (from the log filter, as the line is written inside the RPC's span) the trace id."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from ponder_runtime.interceptors import (
    HEALTH_PREFIX,
    Continuation,
    Done,
    Handler,
    finished_stream,
    finished_unary,
    rewrap,
)
from ponder_runtime.metrics import final_status


logger = logging.getLogger(__name__)


def _line(method: str) -> Done:
    def write(
        context: grpc.aio.ServicerContext[Any, Any], failure: BaseException | None, started: float
    ) -> None:
        logger.info(
            "rpc",
            extra={
                "rpc_method": method,
                "code": final_status(context, failure).name,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "peer": context.peer(),
            },
        )

    return write


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
        done = _line(method)
        return rewrap(
            handler,
            unary=lambda behavior: finished_unary(done, behavior),
            stream=lambda behavior: finished_stream(done, behavior),
        )
