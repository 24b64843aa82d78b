"""Ponder's error hierarchy and its mapping to gRPC status with google.rpc details.

    PonderError (INTERNAL)
    ├── InvalidArgumentError (INVALID_ARGUMENT, google.rpc.BadRequest)
    ├── NotFoundError (NOT_FOUND)
    ├── UnauthenticatedError (UNAUTHENTICATED)
    ├── PermissionDeniedError (PERMISSION_DENIED)
    ├── AlreadyExistsError (ALREADY_EXISTS)
    ├── FailedPreconditionError (FAILED_PRECONDITION)
    ├── ResourceExhaustedError (RESOURCE_EXHAUSTED, google.rpc.RetryInfo)
    │   └── QuotaExceededError (+ google.rpc.QuotaFailure)
    ├── UnavailableError (UNAVAILABLE, google.rpc.RetryInfo)
    └── DeadlineExceededError (DEADLINE_EXCEEDED)

Every error also carries a google.rpc.ErrorInfo (reason, domain "ponder.dev", metadata).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


ERROR_DOMAIN = "ponder.dev"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field: its path (e.g. "parameters.max_sources") and what is wrong."""

    field: str
    description: str


class PonderError(Exception):
    """Base of all errors a Ponder service reports to its callers."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = dict(metadata or {})

    @property
    def reason(self) -> str:
        """The google.rpc.ErrorInfo reason: the name of the status code."""
        return self.code.name

    def details(self) -> list[Message]:
        """google.rpc detail messages attached to the status."""
        return [
            error_details_pb2.ErrorInfo(
                reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
            )
        ]

    def to_rpc_status(self) -> status_pb2.Status:
        """The google.rpc.Status for this error."""
        packed = []
        for detail in self.details():
            holder = any_pb2.Any()
            holder.Pack(detail)
            packed.append(holder)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)

    def to_status(self) -> grpc.Status:
        """The grpc.Status (code, message, grpc-status-details-bin) for this error."""
        status: grpc.Status = rpc_status.to_status(self.to_rpc_status())
        return status


class InvalidArgumentError(PonderError):
    """The request is malformed; lists every bad field as a google.rpc.BadRequest."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {summary}")
        self.violations = tuple(violations)

    def details(self) -> list[Message]:
        """ErrorInfo plus a BadRequest with one field violation per problem."""
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        return [*super().details(), bad_request]


class NotFoundError(PonderError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class UnauthenticatedError(PonderError):
    """No valid credential (API key, or the internal token between services)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(PonderError):
    """A valid credential without the scope the method needs."""

    code = grpc.StatusCode.PERMISSION_DENIED


class AlreadyExistsError(PonderError):
    """A resource with that name already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(PonderError):
    """The system is not in a state where the request can run (e.g. nothing to work on)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class _RetryableError(PonderError):
    """An error the caller may retry after a delay (google.rpc.RetryInfo)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata)
        self.retry_after_seconds = retry_after_seconds

    def details(self) -> list[Message]:
        """ErrorInfo plus RetryInfo when a delay is known."""
        details = super().details()
        if self.retry_after_seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after_seconds * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        return details


class ResourceExhaustedError(_RetryableError):
    """A quota or rate limit was hit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class QuotaExceededError(ResourceExhaustedError):
    """A quota is spent (e.g. an API key's daily token budget); lists each spent quota as a
    google.rpc.QuotaFailure violation (subject, description)."""

    def __init__(
        self,
        message: str,
        violations: Sequence[tuple[str, str]],
        *,
        retry_after_seconds: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds, metadata=metadata)
        self.violations = tuple(violations)

    def details(self) -> list[Message]:
        """ErrorInfo, RetryInfo (when a delay is known) and the QuotaFailure."""
        failure = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(subject=subject, description=text)
                for subject, text in self.violations
            ]
        )
        return [*super().details(), failure]


class UnavailableError(_RetryableError):
    """A dependency is down or not ready yet."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(PonderError):
    """The work did not finish within the caller's deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
