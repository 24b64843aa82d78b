"""Transparent forwarding of whole gRPC services to another server (no decoding of messages).

The gateway uses it to expose the internal services on its own port for debugging, so one
address answers `grpcurl list` for the whole stack. Deadlines, metadata and error details
(grpc-status-details-bin) travel both ways.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor

from ponder_runtime.internal_auth import INTERNAL_TOKEN_HEADER, TENANT_HEADER


# Metadata the transport owns; everything else (traceparent, x-request-id, ...) is forwarded
# but the caller's credentials, which this server checked and the upstream has no use for, and
# any internal token a caller sent (the channel adds the deployment's own, internal_auth.py).
_CREDENTIALS = frozenset(
    {"authorization", "cookie", "x-api-key", INTERNAL_TOKEN_HEADER, TENANT_HEADER}
)
_HOP_BY_HOP = frozenset(
    {
        "grpc-timeout",
        "grpc-accept-encoding",
        "grpc-encoding",
        "user-agent",
        "content-type",
        "te",
        ":authority",
    }
)


MetadataSource = Callable[[], tuple[tuple[str, str], ...]]


def _forwarded_metadata(
    context: grpc.aio.ServicerContext[Any, Any], extra: MetadataSource | None = None
) -> tuple[tuple[str, Any], ...]:
    forwarded = tuple(
        (key, value)
        for key, value in (context.invocation_metadata() or ())
        if key not in _HOP_BY_HOP and key not in _CREDENTIALS
    )
    return forwarded + extra() if extra is not None else forwarded


def _plain(metadata: Any) -> tuple[tuple[str, Any], ...]:
    """Metadata a handler may send on (the transport's own keys dropped)."""
    return tuple(
        (key, value)
        for key, value in metadata
        if key not in _HOP_BY_HOP and not key.startswith(("grpc-", ":"))
    )


async def _pass_metadata(upstream: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Hand the upstream's header and trailer metadata to our caller."""
    initial = await upstream.initial_metadata()
    if initial:
        await context.send_initial_metadata(_plain(initial))
    trailing = await upstream.trailing_metadata()
    if trailing:
        context.set_trailing_metadata(_plain(trailing))


async def _abort_like(
    context: grpc.aio.ServicerContext[Any, Any], exc: grpc.aio.AioRpcError
) -> None:
    await context.abort(exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ()))


class ServiceProxy(grpc.GenericRpcHandler):
    """Forwards every method of the given services to the channel serving them; `metadata`
    adds entries to every forwarded call, computed per call (e.g. the caller's tenant);
    `after` maps a unary method's path ("/pkg.Service/Method") to what to do once a call of
    it has succeeded (e.g. drop what this process remembers of what it changed)."""

    def __init__(
        self,
        channels: Mapping[str, grpc.aio.Channel],
        *,
        metadata: MetadataSource | None = None,
        after: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        pool = descriptor_pool.Default()
        self._extra = metadata
        self._after = dict(after or {})
        self._channels = dict(channels)
        self._methods: dict[str, MethodDescriptor] = {}
        for service_name in channels:
            service = pool.FindServiceByName(service_name)
            for method in service.methods:
                self._methods[f"/{service_name}/{method.name}"] = method

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The forwarding handler for a proxied method, or None for anything else."""
        path = handler_call_details.method
        method = self._methods.get(path)
        if method is None or method.client_streaming:
            return None
        channel = self._channels[method.containing_service.full_name]
        if method.server_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._forward_stream(channel, path, self._extra)
            )
        return grpc.unary_unary_rpc_method_handler(
            self._forward_unary(channel, path, self._extra, self._after.get(path))
        )

    @staticmethod
    def _forward_unary(
        channel: grpc.aio.Channel,
        path: str,
        extra: MetadataSource | None,
        after: Callable[[], Awaitable[None]] | None = None,
    ) -> Any:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            upstream = call(
                request,
                timeout=context.time_remaining(),
                metadata=_forwarded_metadata(context, extra),
            )
            try:
                reply: bytes = await upstream
            except grpc.aio.AioRpcError as exc:
                await _abort_like(context, exc)
                raise
            if after is not None:
                await after()
            await _pass_metadata(upstream, context)
            return reply

        return forward

    @staticmethod
    def _forward_stream(channel: grpc.aio.Channel, path: str, extra: MetadataSource | None) -> Any:
        call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)

        async def forward(
            request: bytes, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[bytes]:
            upstream = call(
                request,
                timeout=context.time_remaining(),
                metadata=_forwarded_metadata(context, extra),
            )
            try:
                initial = await upstream.initial_metadata()
                if initial:
                    await context.send_initial_metadata(_plain(initial))
                async for reply in upstream:
                    yield reply
                trailing = await upstream.trailing_metadata()
                if trailing:
                    context.set_trailing_metadata(_plain(trailing))
            except grpc.aio.AioRpcError as exc:
                await _abort_like(context, exc)

        return forward
