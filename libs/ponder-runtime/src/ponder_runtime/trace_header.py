"""Every gRPC response carries its trace id as `x-trace-id` header metadata, errors included, so
a user can quote it (grpcurl shows it under "Response headers received"), unless the caller
sent a W3C `traceparent` of its own: the trace is then the caller's, whose id it already holds
(the services' calls to each other, and any traced client), and the header, which costs a
separate send before a unary reply, is left out.

The interceptor runs inside the tracing interceptor (the RPC's span is current). It hands the
handler a context that adds `x-trace-id` to whatever header metadata the handler sends itself
(the service proxy forwards its upstream's), or sends it alone before the first response or the
error.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import trace

from ponder_runtime.interceptors import Wrap, WrappingInterceptor


TRACE_ID_KEY = "x-trace-id"


class _WithTraceId:
    """A servicer context whose header metadata includes the trace id."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], trace_id: str) -> None:
        self._context = context
        self._header = ((TRACE_ID_KEY, trace_id),)
        self._sent = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def send_initial_metadata(self, metadata: Any) -> None:
        """The handler's header metadata, with our trace id instead of any other."""
        self._sent = True
        kept = tuple((k, v) for k, v in metadata if k != TRACE_ID_KEY)
        await self._context.send_initial_metadata((*kept, *self._header))

    async def ensure_sent(self) -> None:
        """Send the trace id if the handler sent no header metadata."""
        if not self._sent:
            self._sent = True
            await self._context.send_initial_metadata(self._header)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        """Errors carry the trace id too."""
        await self.ensure_sent()
        await self._context.abort(code, details, trailing_metadata)

    async def abort_with_status(self, status: grpc.Status) -> None:
        """Errors carry the trace id too."""
        await self.ensure_sent()
        await self._context.abort_with_status(status)


TRACEPARENT_KEY = "traceparent"


def _trace_id_to_send(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The current trace id, or "" when there is none or the caller sent its traceparent."""
    if any(key == TRACEPARENT_KEY for key, _ in context.invocation_metadata() or ()):
        return ""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


Behavior = Callable[[Any, Any], Any]


def _unary(behavior: Behavior) -> Callable[[Any, Any], Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        trace_id = _trace_id_to_send(context)
        if not trace_id:
            return await behavior(request, context)
        wrapped = _WithTraceId(context, trace_id)
        reply = await behavior(request, wrapped)
        await wrapped.ensure_sent()
        return reply

    return wrapper


def _stream(behavior: Behavior) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def wrapper(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        trace_id = _trace_id_to_send(context)
        wrapped: Any = _WithTraceId(context, trace_id) if trace_id else context
        result = behavior(request, wrapped)
        if inspect.isasyncgen(result):
            async for item in result:
                if trace_id:
                    await wrapped.ensure_sent()
                yield item
        else:
            await result
        if trace_id:
            await wrapped.ensure_sent()

    return wrapper


class TraceIdInterceptor(WrappingInterceptor):
    """Adds `x-trace-id` header metadata to unary and server-streaming responses."""

    unary_requests_only = True

    def wraps(self, method: str) -> tuple[Wrap, Wrap]:
        """Wrap the handler's behaviour with a context that sends the trace id."""
        return _unary, _stream
