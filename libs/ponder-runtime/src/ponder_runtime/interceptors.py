"""Server interceptor that turns exceptions into gRPC statuses in one place."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ponder_runtime.errors import PonderError


logger = logging.getLogger(__name__)

# grpc.health.v1 Watch writes with context.write(); it reports its own errors.
_HEALTH_PREFIX = "/grpc.health.v1.Health/"

Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


async def _abort(exc: Exception, context: grpc.aio.ServicerContext, method: str) -> None:
    """Abort the RPC with the status for `exc`; unexpected errors become INTERNAL."""
    if isinstance(exc, PonderError):
        logger.info(
            "rpc failed", extra={"rpc_method": method, "code": exc.code.name, "error": exc.message}
        )
        await context.abort_with_status(exc.to_status())
    if isinstance(exc, NotImplementedError):  # generated base servicer methods
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
    logger.exception("unexpected error in %s", method)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(exc).__name__}"
    )


def _wrap_unary(behavior: Behavior, method: str) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(request, context)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception as exc:
            await _abort(exc, context, method)
            raise  # unreachable: abort raises

    return wrapper


def _wrap_stream(behavior: Behavior, method: str) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            result = behavior(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                await result
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception as exc:
            await _abort(exc, context, method)

    return wrapper


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Maps PonderError to its status (with google.rpc details) and anything else to INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap unary-response and server-streaming handlers."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.request_streaming or method.startswith(_HEALTH_PREFIX):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


Guard = Callable[[grpc.aio.ServicerContext, str], Awaitable[None]]


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Runs `guard(context, method)` before every unary-request handler except those under
    `open_prefixes` (health, reflection); a PonderError it raises rejects the call (and is
    mapped to its status by the ErrorMappingInterceptor outside)."""

    def __init__(self, guard: Guard, *, open_prefixes: tuple[str, ...]) -> None:
        self._guard = guard
        self._open = open_prefixes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap the handler so that the guard runs first."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.request_streaming or method.startswith(self._open):
            return handler
        guard = self._guard
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await guard(context, method)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await guard(context, method)
                result = inner_stream(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
