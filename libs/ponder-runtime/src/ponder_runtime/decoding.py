"""Requests whose bytes are no valid message end with INVALID_ARGUMENT, not UNKNOWN.

grpc.aio decodes a request with the handler's `request_deserializer` before any interceptor
or servicer code runs, and ends the call with UNKNOWN ("Unexpected DecodeError") when that
raises. `safe_decoding` wraps a method handler so that a DecodeError (corrupt wire format,
invalid UTF-8 in a string field) yields an `UndecodableRequest` instead, which the wrapped
behaviour turns into INVALID_ARGUMENT with a google.rpc.BadRequest naming the request type, or
the string field with bad UTF-8 where it can be found. Raw handlers (no deserializer, as the
gateway's proxy of the internal services) are left alone: the service behind them decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor
from google.protobuf.message import DecodeError

from ponder_runtime.errors import FieldViolation, InvalidArgumentError
from ponder_runtime.interceptors import checked_stream, checked_unary, rewrap


_STRING = descriptor.FieldDescriptor.TYPE_STRING
_MAX_DEPTH = 32  # nesting followed while looking for the bad string field


@dataclass(frozen=True, slots=True)
class UndecodableRequest:
    """Stands for a request whose bytes did not decode; carries why."""

    type_name: str
    field: str
    reason: str

    def error(self) -> InvalidArgumentError:
        """The INVALID_ARGUMENT error to answer with."""
        description = f"{self.reason} (the request does not decode as {self.type_name})"
        return InvalidArgumentError([FieldViolation(self.field, description)])


def _request_type(deserializer: Callable[[bytes], Any]) -> descriptor.Descriptor | None:
    """The message type a generated deserializer (`Message.FromString`) decodes, if known."""
    owner = getattr(deserializer, "__self__", None)
    found = getattr(owner, "DESCRIPTOR", None)
    return found if isinstance(found, descriptor.Descriptor) else None


def _safe_deserializer(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    message_type = _request_type(deserializer)
    type_name = message_type.full_name if message_type is not None else "request"

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            reason = str(exc).rsplit(": ", 1)[-1] or "cannot be decoded"
            path = None if message_type is None else bad_utf8_field(message_type, data)
            if path is not None:
                return UndecodableRequest(type_name, path, "invalid UTF-8")
            return UndecodableRequest(type_name, type_name, f"corrupt wire format: {reason}")

    return deserialize


async def _reject_undecodable(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    if isinstance(request, UndecodableRequest):
        await context.abort_with_status(request.error().to_status())


def safe_decoding(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with a request deserializer that never raises DecodeError (see the module
    docstring); raw and client-streaming handlers unchanged."""
    deserializer = handler.request_deserializer
    if deserializer is None or handler.request_streaming:
        return handler
    return rewrap(
        handler,
        unary=lambda behavior: checked_unary(_reject_undecodable, behavior),
        stream=lambda behavior: checked_stream(_reject_undecodable, behavior),
        request_deserializer=_safe_deserializer(deserializer),
    )


class SafeDecodingHandler(grpc.GenericRpcHandler):
    """A generic handler whose method handlers go through `safe_decoding`."""

    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The inner handler's method handler, made safe."""
        found: grpc.RpcMethodHandler[Any, Any] | None = self._inner.service(handler_call_details)
        return None if found is None else safe_decoding(found)


def safe_generic_handlers(
    handlers: Sequence[grpc.GenericRpcHandler],
) -> tuple[grpc.GenericRpcHandler, ...]:
    """Each of `handlers` wrapped in a SafeDecodingHandler."""
    return tuple(SafeDecodingHandler(handler) for handler in handlers)


# --- locating the string field with invalid UTF-8 (best effort; None when not found) ---


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _skip(data: bytes, pos: int, wire_type: int) -> tuple[int, bytes | None]:
    """Position after a field's value, and its bytes when length-delimited."""
    if wire_type == 0:
        return _varint(data, pos)[1], None
    if wire_type == 1:
        return pos + 8, None
    if wire_type == 5:
        return pos + 4, None
    if wire_type == 2:
        length, pos = _varint(data, pos)
        if pos + length > len(data):
            raise ValueError("truncated length-delimited field")
        return pos + length, data[pos : pos + length]
    raise ValueError(f"wire type {wire_type} cannot be skipped here")


def bad_utf8_field(
    message_type: descriptor.Descriptor, data: bytes, prefix: str = "", depth: int = 0
) -> str | None:
    """The path (e.g. "documents[0].title") of the first string field of `data` that is not
    valid UTF-8, or None when none is found or the bytes are corrupt otherwise."""
    counts: dict[str, int] = {}
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire_type = key >> 3, key & 7
            pos, value = _skip(data, pos, wire_type)
            field = message_type.fields_by_number.get(number)
            if field is None or value is None:
                continue
            path = f"{prefix}{field.name}"
            if field.is_repeated:
                index = counts.get(field.name, 0)
                counts[field.name] = index + 1
                path = f"{path}[{index}]"
            if field.type == _STRING:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    return path
            elif field.message_type is not None and depth < _MAX_DEPTH:
                found = bad_utf8_field(field.message_type, value, f"{path}.", depth + 1)
                if found is not None:
                    return found
    except ValueError:
        return None
    return None
