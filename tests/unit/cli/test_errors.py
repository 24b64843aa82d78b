"""How the CLI words a failed call and which exit status it picks, from the gRPC status and
its google.rpc details."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from ponder_cli.errors import ExitCode, from_rpc_error


class FailedCall(grpc.RpcError, grpc.Call):
    """A failed call as grpc raises it, with an optional rich status."""

    def __init__(self, code: grpc.StatusCode, details: str, *extra: Message) -> None:
        self._code = code
        self._details = details
        self._trailers: tuple[tuple[str, bytes], ...] = ()
        if extra:
            status = status_pb2.Status(code=code.value[0], message=details)
            for detail in extra:
                packed = any_pb2.Any()
                packed.Pack(detail)
                status.details.append(packed)
            self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailers

    def initial_metadata(self):
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, ExitCode.BAD_REQUEST),
        (grpc.StatusCode.FAILED_PRECONDITION, ExitCode.BAD_REQUEST),
        (grpc.StatusCode.ALREADY_EXISTS, ExitCode.BAD_REQUEST),
        (grpc.StatusCode.NOT_FOUND, ExitCode.NOT_FOUND),
        (grpc.StatusCode.UNAUTHENTICATED, ExitCode.AUTH),
        (grpc.StatusCode.PERMISSION_DENIED, ExitCode.AUTH),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ExitCode.RATE_LIMITED),
        (grpc.StatusCode.UNAVAILABLE, ExitCode.UNREACHABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ExitCode.TIMEOUT),
        (grpc.StatusCode.INTERNAL, ExitCode.SERVER_ERROR),
        (grpc.StatusCode.UNKNOWN, ExitCode.SERVER_ERROR),
    ],
)
def test_each_code_has_its_exit_status(code, exit_code):
    assert from_rpc_error(FailedCall(code, "why"), "gw:1").exit_code == exit_code


def test_the_wait_and_the_fields_come_from_the_rich_status():
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromNanoseconds(2_500_000_000)
    limited = from_rpc_error(
        FailedCall(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded", retry), "gw:1"
    )
    assert limited.message == "rate limited: retry in 2.5s (rate limit exceeded)"
    assert limited.retry_after_seconds == 2.5
    bad = error_details_pb2.BadRequest()
    bad.field_violations.add(field="workflow.topic", description="must not be empty")
    rejected = from_rpc_error(FailedCall(grpc.StatusCode.INVALID_ARGUMENT, "bad", bad), "gw:1")
    assert rejected.message == "INVALID_ARGUMENT: bad\n  workflow.topic: must not be empty"


def test_an_unavailable_gateway_is_told_from_an_unreachable_one():
    """No rich status: the connection failed; with one: the gateway answered UNAVAILABLE
    (e.g. a dependency down), which the message says, with the wait."""
    unreachable = from_rpc_error(FailedCall(grpc.StatusCode.UNAVAILABLE, "refused"), "gw:1")
    assert unreachable.message == "cannot reach the gateway at gw:1: refused"
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromNanoseconds(1_000_000_000)
    answered = from_rpc_error(
        FailedCall(grpc.StatusCode.UNAVAILABLE, "research unavailable", retry), "gw:1"
    )
    assert (
        answered.message
        == "the gateway at gw:1 is unavailable: research unavailable; retry in 1.0s"
    )
    assert answered.exit_code == ExitCode.UNREACHABLE
