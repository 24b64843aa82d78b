"""Server interceptor that turns exceptions into gRPC statuses in one place."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Optional

import grpc

from ponder_runtime.errors import PonderError


logger = logging.getLogger(__name__)

# grpc.health.v1: Watch writes with context.write(), which wrapped behaviours cannot carry;
# health reports its own errors and is neither traced nor counted.
HEALTH_PREFIX = "/grpc.health.v1.Health/"

# An interceptor's continuation and what it returns (None: no such method).
Handler = Optional["grpc.RpcMethodHandler[Any, Any]"]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]
# A handler's behaviour: (request, context) -> reply or reply stream; the context is a
# grpc.aio.ServicerContext, or a local.LocalContext for in-process calls.
Behavior = Callable[[Any, Any], Any]


async def _abort(exc: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
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
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception as exc:
            await _abort(exc, context, method)
            raise  # unreachable: abort raises

    return wrapper


def _wrap_stream(behavior: Behavior, method: str) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
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


def rewrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    *,
    unary: Callable[[Behavior], Behavior],
    stream: Callable[[Behavior], Behavior],
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with its behaviour wrapped (serializers kept): `unary` wraps the methods with
    one reply (unary or client-streaming; the first argument is then the request iterator),
    `stream` those with a reply stream; `request_deserializer` replaces the handler's when
    given. The one place handlers are rebuilt."""
    deserialize = request_deserializer or handler.request_deserializer
    kinds = (
        (handler.unary_unary, unary, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, stream, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, unary, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, stream, grpc.stream_stream_rpc_method_handler),
    )
    for behaviour, wrap, make in kinds:
        if behaviour is not None:
            return make(
                wrap(behaviour),
                request_deserializer=deserialize,
                response_serializer=handler.response_serializer,
            )
    return handler


# How a WrappingInterceptor wraps a method's behaviour: (one reply, a reply stream).
Wrap = Callable[[Behavior], Behavior]


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the behaviour of every handler but those under `exempt` (health's), and with
    `unary_requests_only` only of methods without a request stream: `wraps(method)` says how."""

    exempt: tuple[str, ...] = (HEALTH_PREFIX,)
    unary_requests_only = False

    def wraps(self, method: str) -> tuple[Wrap, Wrap]:
        """The wrappers of `method`'s behaviour: for one reply, and for a reply stream."""
        raise NotImplementedError

    @functools.cached_property
    def _wrapped(self) -> dict[str, tuple[grpc.RpcMethodHandler[Any, Any], Handler]]:
        """Per method: the handler last seen and what it was made into."""
        return {}

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        """The handler, its behaviour wrapped unless it is exempt. What a handler is made into
        depends on the method alone, so it is made once per method and handler, not per call
        (the handlers below are the same objects from call to call)."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # no such method: nothing kept for names a client makes up
        method = handler_call_details.method
        kept = self._wrapped.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = handler
        if not (
            method.startswith(self.exempt)
            or (self.unary_requests_only and handler.request_streaming)
        ):
            unary, stream = self.wraps(method)
            wrapped = rewrap(handler, unary=unary, stream=stream)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class ErrorMappingInterceptor(WrappingInterceptor):
    """Maps PonderError to its status (with google.rpc details) and anything else to INTERNAL."""

    # The wrapped handler depends on the method alone (not on the call's metadata), so
    # in-process callers may keep it per method (local.HandlerRegistry does).
    per_method = True

    def wraps(self, method: str) -> tuple[Wrap, Wrap]:
        """Map the errors of either kind of behaviour."""
        return functools.partial(_wrap_unary, method=method), functools.partial(
            _wrap_stream, method=method
        )


Guard = Callable[[grpc.aio.ServicerContext[Any, Any], str], Awaitable[None]]


class GuardInterceptor(WrappingInterceptor):
    """Runs `guard(context, method)` before every handler except those under `open_prefixes`
    (health, reflection), streaming requests included; a PonderError it raises rejects the
    call (and is mapped to its status by the ErrorMappingInterceptor outside)."""

    per_method = True  # the guard reads the metadata when the call runs (see ErrorMapping)

    def __init__(self, guard: Guard, *, open_prefixes: tuple[str, ...]) -> None:
        self._guard = guard
        self.exempt = open_prefixes

    def wraps(self, method: str) -> tuple[Wrap, Wrap]:
        """Wrap the behaviour so that the guard runs first."""
        guard = self._guard

        async def check(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await guard(context, method)

        return functools.partial(checked_unary, check), functools.partial(checked_stream, check)


Check = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]


def checked_unary(check: Check, inner: Behavior) -> Behavior:
    """`inner` (one reply) with `check(request, context)` awaited first: it may abort."""

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await check(request, context)
        return await inner(request, context)

    return unary


def checked_stream(check: Check, inner: Behavior) -> Behavior:
    """`inner` (a reply stream) with `check(request, context)` awaited first: it may abort."""

    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        await check(request, context)
        result = inner(request, context)
        if inspect.isasyncgen(result):
            async for item in result:
                yield item
        else:
            await result

    return stream


# Called once an RPC ended: (context, the exception it ended with or None, perf_counter start).
Done = Callable[[grpc.aio.ServicerContext[Any, Any], BaseException | None, float], None]


def finished_unary(done: Done, inner: Behavior) -> Behavior:
    """`inner` (one reply) with `done(...)` called when it ended, however it ended."""

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            return await inner(request, context)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            done(context, failure, started)

    return unary


def finished_stream(done: Done, inner: Behavior) -> Behavior:
    """`inner` (a reply stream) with `done(...)` called when it ended, however it ended."""

    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            result = inner(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                await result
        except BaseException as exc:
            failure = exc
            raise
        finally:
            done(context, failure, started)

    return stream
