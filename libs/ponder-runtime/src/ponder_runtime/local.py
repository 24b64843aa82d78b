"""Call a server's own gRPC handlers in-process, through its interceptors, without a socket.

The REST facade uses this to reach the gateway's methods with no network hop while keeping
every rule of the gRPC path: the same handlers, the same guard (API keys, rate limits) and the
same error mapping. `HandlerRegistry` stands in for the server while a ServiceModule registers
(it records the handlers and forwards them to the real server); `LocalContext` is the
ServicerContext of one in-process call; `LocalCallError` carries the status a call ended with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2

from ponder_runtime.decoding import safe_decoding, safe_generic_handlers
from ponder_runtime.interceptors import Behavior, Continuation


Metadata = tuple[tuple[str, str | bytes], ...]

_DETAILS_KEY = "grpc-status-details-bin"


class LocalCallError(grpc.aio.AbortError):
    """An in-process call ended with a non-OK status (from abort, or mapped by interceptors).

    An AbortError, as the real server's abort raises, so that interceptors which let aborts
    through (the ErrorMappingInterceptor) do not remap it to INTERNAL.
    """

    def __init__(self, status: status_pb2.Status, trailing: Metadata = ()) -> None:
        super().__init__(status.message)
        self.status = status
        self.trailing = trailing

    @property
    def code(self) -> grpc.StatusCode:
        """The gRPC status code."""
        return _CODES.get(self.status.code, grpc.StatusCode.UNKNOWN)


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _status_of(code: grpc.StatusCode, message: str, trailing: Metadata) -> status_pb2.Status:
    """The google.rpc.Status of an abort, with the details the trailers carry."""
    for key, value in trailing:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            if status.code == code.value[0]:
                return status
    return status_pb2.Status(code=code.value[0], message=message)


class LocalContext:
    """The grpc.aio.ServicerContext[Any, Any] of an in-process call (the parts handlers use)."""

    def __init__(self, metadata: Metadata, peer: str, deadline: float | None) -> None:
        self._metadata = metadata
        self._peer = peer
        self._deadline = deadline
        self._trailing: Metadata = ()
        self.initial: Metadata = ()
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def invocation_metadata(self) -> Metadata:
        """Request metadata (lower-case keys)."""
        return self._metadata

    def peer(self) -> str:
        """The caller, in gRPC's form ("ipv4:127.0.0.1:5000")."""
        return self._peer

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline, or None without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> NoReturn:
        """End the call with `code`; details in the trailers are kept."""
        trailing = tuple(trailing_metadata or ())
        raise LocalCallError(_status_of(code, details, trailing), trailing)

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        """End the call with a grpc.Status (as built by grpc_status.rpc_status.to_status)."""
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_trailing_metadata(self, metadata: Metadata) -> None:
        """Trailing metadata to return with the response."""
        self._trailing = tuple(metadata)

    def trailing_metadata(self) -> Metadata:
        """What the handler set as trailing metadata."""
        return self._trailing

    async def send_initial_metadata(self, metadata: Metadata) -> None:
        """Header metadata to return with the response."""
        self.initial = tuple(metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        """A status code set without aborting (ends the call when the handler returns)."""
        self._code = code

    def set_details(self, details: str) -> None:
        """The message of a status set with set_code."""
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        """The status code set with set_code, if any."""
        return self._code

    def details(self) -> str:
        """The message set with set_details."""
        return self._details

    def cancelled(self) -> bool:
        """In-process calls are cancelled by cancelling their task, never flagged."""
        return False

    def done(self) -> bool:
        """Whether the call finished (never, while a handler runs)."""
        return False

    def check_status(self) -> None:
        """Raise the status a handler set with set_code (without aborting)."""
        if self._code is not None and self._code != grpc.StatusCode.OK:
            raise LocalCallError(
                status_pb2.Status(code=self._code.value[0], message=self._details),
                self._trailing,
            )


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str, metadata: Metadata) -> None:
        self.method = method
        self.invocation_metadata = metadata


class HandlerRegistry:
    """Records the handlers a ServiceModule registers (and forwards them to the real server),
    then serves in-process calls through the server's interceptors."""

    def __init__(
        self, server: grpc.aio.Server, interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
    ) -> None:
        self._server = server
        self._generic: list[grpc.GenericRpcHandler] = []
        self._interceptors = tuple(interceptors)
        # Handlers wrapped by interceptors that all say their wrapping depends on the method
        # alone (`per_method = True`) are built once per method, not on every call.
        self._per_method = all(getattr(i, "per_method", False) for i in self._interceptors)
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Record and register generic handlers (what generated add_*_to_server calls); a
        request that does not decode ends with INVALID_ARGUMENT (decoding.safe_decoding)."""
        safe = safe_generic_handlers(handlers)
        self._generic.extend(safe)
        self._wrapped.clear()
        self._server.add_generic_rpc_handlers(safe)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Register per-method handlers (newer generated code calls this too; the server
        prefers them to generic ones), with the same safe decoding."""
        safe = {name: safe_decoding(handler) for name, handler in handlers.items()}
        self._server.add_registered_method_handlers(service, safe)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    async def _lookup(
        self, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        for handler in self._generic:
            found = handler.service(details)
            if found is not None:
                return found
        return None

    async def handler(
        self, method: str, metadata: Metadata
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The handler of `method` wrapped by the interceptors, as the server would run it."""
        found = self._wrapped.get(method)
        if found is not None:
            return found
        continuation: Continuation = self._lookup
        for interceptor in reversed(self._interceptors):
            continuation = _chain(interceptor, continuation)
        handler = await continuation(_CallDetails(method, metadata))
        if handler is not None and self._per_method:
            self._wrapped[method] = handler
        return handler

    async def unary(self, method: str, request: Message, context: LocalContext) -> Any:
        """Run a unary method; raises LocalCallError with the status it ended with."""
        handler = await self._require(method, context)
        behavior: Behavior | None = handler.unary_unary
        if behavior is None:
            raise _unimplemented(method)
        request_arg = _request_arg(handler, request)
        remaining = context.time_remaining()
        try:  # outside the timeout block, which raises TimeoutError as it exits
            async with asyncio.timeout(remaining):
                reply = await behavior(request_arg, context)
        except TimeoutError:
            raise _deadline_error() from None
        context.check_status()
        return reply

    async def stream(
        self, method: str, request: Message, context: LocalContext
    ) -> AsyncIterator[Any]:
        """Run a server-streaming method; raises LocalCallError with its final status."""
        handler = await self._require(method, context)
        behavior: Behavior | None = handler.unary_stream
        if behavior is None:
            raise _unimplemented(method)
        replies: AsyncGenerator[Any, None] = aiter(
            behavior(_request_arg(handler, request), context)
        )
        while True:
            # The deadline bounds each wait for the next message, never the consumer's time
            # between them (a timeout spanning `yield` would cancel the consumer instead).
            try:
                async with asyncio.timeout(context.time_remaining()):
                    reply = await anext(replies)
            except StopAsyncIteration:
                break
            except TimeoutError:
                await replies.aclose()
                raise _deadline_error() from None
            yield reply
        context.check_status()

    async def _require(self, method: str, context: LocalContext) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await self.handler(method, context.invocation_metadata())
        if handler is None:
            raise _unimplemented(method)
        return handler


def _unimplemented(method: str) -> LocalCallError:
    return LocalCallError(
        status_pb2.Status(
            code=grpc.StatusCode.UNIMPLEMENTED.value[0],
            message=f"method {method} is not served here",
        )
    )


def _deadline_error() -> LocalCallError:
    return LocalCallError(
        status_pb2.Status(
            code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0], message="deadline exceeded"
        )
    )


def _request_arg(handler: grpc.RpcMethodHandler[Any, Any], request: Message) -> Any:
    """The request as the handler takes it: the message, or its bytes for a raw (proxy) one."""
    if handler.request_deserializer is None:
        return request.SerializeToString()
    return request


def _chain(interceptor: grpc.aio.ServerInterceptor, inner: Continuation) -> Continuation:
    async def call(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler: grpc.RpcMethodHandler[Any, Any] | None = await interceptor.intercept_service(
            inner, details
        )
        return handler

    return call
