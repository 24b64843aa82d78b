"""What the CLI says and which exit status it returns when a call fails."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class ExitCode(enum.IntEnum):
    """The `ponder` command's exit statuses (documented in `ponder --help`)."""

    OK = 0
    WORKFLOW_UNSUCCESSFUL = 1  # the workflow ended FAILED or CANCELLED; health not SERVING
    BAD_REQUEST = 2  # a usage error, or the gateway rejected the request's content
    NOT_FOUND = 3
    AUTH = 4  # no API key, a wrong one, or not allowed
    RATE_LIMITED = 5  # rate limited or over capacity; the message says when to retry
    UNREACHABLE = 6  # no gateway at the address, or it is unavailable
    TIMEOUT = 7  # the call's deadline passed
    SERVER_ERROR = 8  # any other failure of the gateway
    INTERRUPTED = 130  # Ctrl-C
    PIPE_CLOSED = 141  # the reader of our output went away (as a shell reports SIGPIPE)


EXIT_CODES_HELP = """Exit status: 0 success; 1 the workflow ended FAILED or CANCELLED (or
health is not SERVING); 2 usage error or request rejected (INVALID_ARGUMENT, FAILED_PRECONDITION,
ALREADY_EXISTS); 3 not found; 4 authentication failed (UNAUTHENTICATED, PERMISSION_DENIED);
5 rate limited or over capacity (RESOURCE_EXHAUSTED; the wait is printed); 6 gateway
unreachable (UNAVAILABLE); 7 deadline exceeded; 8 other server error; 130 interrupted; 141
the output pipe closed."""

_EXIT_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: ExitCode.BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: ExitCode.BAD_REQUEST,
    grpc.StatusCode.ALREADY_EXISTS: ExitCode.BAD_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: ExitCode.BAD_REQUEST,
    grpc.StatusCode.NOT_FOUND: ExitCode.NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED: ExitCode.AUTH,
    grpc.StatusCode.PERMISSION_DENIED: ExitCode.AUTH,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ExitCode.RATE_LIMITED,
    grpc.StatusCode.UNAVAILABLE: ExitCode.UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ExitCode.TIMEOUT,
    grpc.StatusCode.CANCELLED: ExitCode.INTERRUPTED,
}


class CliError(Exception):
    """A failure to report on stderr (`message`) and exit with (`exit_code`)."""

    def __init__(
        self, message: str, exit_code: ExitCode, *, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.retry_after_seconds = retry_after_seconds


@dataclass
class _Details:
    """What a failed call's rich status (google.rpc.Status) says beyond its code."""

    answered: bool = False  # the gateway itself sent the error (not a failed connection)
    retry_after: float | None = None
    fields: list[str] = field(default_factory=list)


def _details(error: grpc.RpcError) -> _Details:
    """RetryInfo's delay and BadRequest's field violations from the rich status, if any."""
    if not isinstance(error, grpc.Call):
        return _Details()
    status = rpc_status.from_call(error)
    if status is None:
        return _Details()
    retry_after: float | None = None
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry_after = info.retry_delay.ToNanoseconds() / 1e9
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(f"{v.field}: {v.description}" for v in bad.field_violations)
    return _Details(answered=True, retry_after=retry_after, fields=fields)


def from_rpc_error(error: grpc.RpcError, address: str) -> CliError:
    """A CliError for a failed call, worded for the person at the terminal."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    detail = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
    details = _details(error)
    retry_after = details.retry_after
    exit_code = _EXIT_BY_CODE.get(code, ExitCode.SERVER_ERROR)
    if code == grpc.StatusCode.UNAVAILABLE and not details.answered:
        message = f"cannot reach the gateway at {address}: {detail}"
    elif code == grpc.StatusCode.UNAVAILABLE:
        wait = f"; retry in {retry_after:.1f}s" if retry_after is not None else ""
        message = f"the gateway at {address} is unavailable: {detail}{wait}"
    elif exit_code == ExitCode.AUTH:
        message = f"authentication failed ({code.name}): {detail}; pass --key or set PONDER_API_KEY"
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        wait = f"retry in {retry_after:.1f}s" if retry_after is not None else "retry later"
        message = f"rate limited: {wait} ({detail})"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"the call timed out ({detail}); a longer --timeout may help"
    else:
        message = f"{code.name}: {detail}"
    for violation in details.fields:
        message += f"\n  {violation}"
    return CliError(message, exit_code, retry_after_seconds=retry_after)
