"""PonderError hierarchy: gRPC codes and google.rpc details (ErrorInfo, BadRequest, RetryInfo)."""

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ponder_runtime import (
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PonderError,
    ResourceExhaustedError,
    UnavailableError,
)
from ponder_runtime.errors import ERROR_DOMAIN


def _unpack(status: status_pb2.Status) -> list[Message]:
    """The detail messages of a google.rpc.Status, unpacked to their types."""
    kinds = {
        error_details_pb2.ErrorInfo.DESCRIPTOR: error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest.DESCRIPTOR: error_details_pb2.BadRequest,
        error_details_pb2.RetryInfo.DESCRIPTOR: error_details_pb2.RetryInfo,
    }
    unpacked: list[Message] = []
    for detail in status.details:
        for descriptor, kind in kinds.items():
            if detail.Is(descriptor):
                message = kind()
                assert detail.Unpack(message)
                unpacked.append(message)
                break
        else:
            pytest.fail(f"unexpected detail {detail.type_url}")
    return unpacked


ALL_ERRORS = [
    (PonderError("boom"), grpc.StatusCode.INTERNAL, "INTERNAL"),
    (
        InvalidArgumentError([FieldViolation("query", "must not be empty")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    (NotFoundError("no such run"), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    (
        FailedPreconditionError("no documents"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "FAILED_PRECONDITION",
    ),
    (ResourceExhaustedError("quota"), grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"),
    (UnavailableError("down"), grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    (DeadlineExceededError("slow"), grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
]
ALL_IDS = [type(error).__name__ for error, _, _ in ALL_ERRORS]


class TestErrorCodes:
    @pytest.mark.parametrize(("error", "code", "reason"), ALL_ERRORS, ids=ALL_IDS)
    def test_code_and_reason(self, error: PonderError, code: grpc.StatusCode, reason: str) -> None:
        """Each error maps to its gRPC code and names it as the ErrorInfo reason."""
        assert isinstance(error, PonderError)
        assert error.code is code
        assert error.reason == reason

    @pytest.mark.parametrize(("error", "code", "reason"), ALL_ERRORS, ids=ALL_IDS)
    def test_rpc_status_carries_code_message_and_error_info(
        self, error: PonderError, code: grpc.StatusCode, reason: str
    ) -> None:
        """to_rpc_status() has the numeric code, the message and an ErrorInfo first."""
        status = error.to_rpc_status()
        assert status.code == code.value[0]
        assert status.message == error.message == str(error)
        info = _unpack(status)[0]
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert info.domain == ERROR_DOMAIN == "ponder.dev"
        assert info.reason == reason

    def test_error_info_carries_metadata(self) -> None:
        """Metadata given to the error ends up in ErrorInfo.metadata."""
        error = NotFoundError("no such run", metadata={"run_id": "r-1"})
        (info,) = _unpack(error.to_rpc_status())
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert dict(info.metadata) == {"run_id": "r-1"}

    def test_numeric_codes_match_google_rpc(self) -> None:
        """The status codes agree with google.rpc.Code (what other languages decode)."""
        assert UnavailableError("x").to_rpc_status().code == code_pb2.UNAVAILABLE
        assert InvalidArgumentError([]).to_rpc_status().code == code_pb2.INVALID_ARGUMENT


class TestInvalidArgumentError:
    def test_bad_request_lists_every_violation(self) -> None:
        """The BadRequest detail has one field violation per problem, in order."""
        error = InvalidArgumentError(
            [
                FieldViolation("query", "must not be empty"),
                FieldViolation("max_results", "must be between 1 and 50, got 500"),
            ]
        )
        info, bad_request = _unpack(error.to_rpc_status())
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert isinstance(bad_request, error_details_pb2.BadRequest)
        assert [(v.field, v.description) for v in bad_request.field_violations] == [
            ("query", "must not be empty"),
            ("max_results", "must be between 1 and 50, got 500"),
        ]

    def test_message_summarises_violations(self) -> None:
        """The message names every field and its problem."""
        error = InvalidArgumentError(
            [FieldViolation("a", "is bad"), FieldViolation("b.c", "is worse")]
        )
        assert error.message == "invalid request: a: is bad; b.c: is worse"
        assert error.violations == (
            FieldViolation("a", "is bad"),
            FieldViolation("b.c", "is worse"),
        )


class TestRetryableErrors:
    @pytest.mark.parametrize("kind", [UnavailableError, ResourceExhaustedError])
    def test_retry_info_carries_the_delay(self, kind: type[UnavailableError]) -> None:
        """retry_after_seconds becomes a RetryInfo with that delay."""
        error = kind("try later", retry_after_seconds=1.25)
        info, retry = _unpack(error.to_rpc_status())
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.seconds == 1
        assert retry.retry_delay.nanos == 250_000_000
        assert retry.retry_delay.ToNanoseconds() == 1_250_000_000

    def test_no_retry_info_without_a_delay(self) -> None:
        """Without retry_after_seconds only the ErrorInfo is attached."""
        details = _unpack(UnavailableError("down").to_rpc_status())
        assert [type(d) for d in details] == [error_details_pb2.ErrorInfo]

    def test_metadata_and_delay_together(self) -> None:
        """Metadata and a delay can be given together."""
        error = UnavailableError("down", retry_after_seconds=0.5, metadata={"source": "arxiv"})
        info, retry = _unpack(error.to_rpc_status())
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert dict(info.metadata) == {"source": "arxiv"}
        assert retry.retry_delay.ToNanoseconds() == 500_000_000


class TestToStatus:
    def test_grpc_status_round_trips(self) -> None:
        """to_status() carries code, message and the details in grpc-status-details-bin."""
        error = InvalidArgumentError([FieldViolation("query", "must not be empty")])
        status = error.to_status()
        assert status.code is grpc.StatusCode.INVALID_ARGUMENT
        assert status.details == error.message
        ((key, value),) = status.trailing_metadata
        assert key == "grpc-status-details-bin"
        decoded = status_pb2.Status.FromString(value)
        assert decoded == error.to_rpc_status()
        assert rpc_status.to_status(decoded).code is grpc.StatusCode.INVALID_ARGUMENT
