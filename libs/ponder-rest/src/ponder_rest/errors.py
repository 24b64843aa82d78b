"""gRPC statuses as HTTP errors: grpc-gateway's status table, Status bodies, the writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from ponder_rest.codec import dumps
from ponder_rest.exchange import Exchange, Send, respond


# grpc-gateway v2 runtime/errors.go (CANCELLED is 499, as in Envoy).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def http_status(code: int) -> int:
    """The HTTP status of a numeric gRPC code."""
    return HTTP_STATUS.get(_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN), 500)


class HttpError(Exception):
    """An error answered before (or instead of) calling a method."""

    def __init__(
        self, http: int, status: status_pb2.Status, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        super().__init__(status.message)
        self.http = http
        self.status = status
        self.headers = list(headers)


class ClientGoneError(Exception):
    """The client closed the connection before the response (logged as 499)."""


def error(code: grpc.StatusCode, message: str, http: int | None = None) -> HttpError:
    """An HttpError of `code` (its HTTP status from the table unless `http` is given)."""
    return HttpError(http or http_status(code.value[0]), make_status(code, message))


def not_allowed(allowed: list[str]) -> HttpError:
    """405 with the Allow header listing the methods the path accepts."""
    allow = ", ".join(allowed)
    found = error(
        grpc.StatusCode.UNIMPLEMENTED, f"method not allowed; this path accepts {allow}", 405
    )
    found.headers.append((b"allow", allow.encode()))
    return found


def status_body(status: status_pb2.Status) -> bytes:
    """A google.rpc.Status as grpc-gateway's error body {code, message, details}."""
    return dumps(status_obj(status))


def status_obj(status: status_pb2.Status) -> Any:
    """A google.rpc.Status as JSON objects (details keep their @type)."""
    try:
        return json_format.MessageToDict(status, always_print_fields_with_no_presence=True)
    except (TypeError, KeyError):  # a detail of a type this process cannot resolve
        bare = status_pb2.Status(code=status.code, message=status.message)
        return json_format.MessageToDict(bare, always_print_fields_with_no_presence=True)


def make_status(code: grpc.StatusCode, message: str, *details: Message) -> status_pb2.Status:
    """A google.rpc.Status with packed details."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return status


def bad_request(field: str, description: str) -> status_pb2.Status:
    """INVALID_ARGUMENT with one google.rpc.BadRequest field violation."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    return make_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"invalid request: {field}: {description}",
        error_details_pb2.BadRequest(field_violations=[violation]),
    )


def retry_after_seconds(status: status_pb2.Status) -> int | None:
    """Whole seconds (rounded up, at least 1) of the status's RetryInfo, if it has one."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            nanos = int(info.retry_delay.seconds) * 1_000_000_000 + int(info.retry_delay.nanos)
            return max(1, -(-nanos // 1_000_000_000))
    return None


async def send_error(exchange: Exchange, send: Send, failure: HttpError) -> None:
    """The error's status as a JSON body, with Retry-After from its RetryInfo; nothing when
    the response already started (nothing more can be said then)."""
    if exchange.status:
        return
    headers = [*exchange.response_headers, *failure.headers]
    retry = retry_after_seconds(failure.status)
    if retry is not None:
        headers.append((b"retry-after", str(retry).encode()))
    body = status_body(failure.status)
    await respond(exchange, send, failure.http, body, kind=b"application/json", headers=headers)
