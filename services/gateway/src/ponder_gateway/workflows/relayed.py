"""Errors that crossed a process boundary (a Temporal activity, a workflow's record) as a
google.rpc.Status, raised again with that same status: code, message and details."""

from __future__ import annotations

import grpc
from google.rpc import status_pb2

from ponder_runtime import PonderError


class RelayedError(PonderError):
    """An error known by its google.rpc.Status, which it reports unchanged."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status

    def to_rpc_status(self) -> status_pb2.Status:
        """The status as it was relayed."""
        return self.status


_BY_CODE: dict[int, type[RelayedError]] = {
    code.value[0]: type(
        f"Relayed{code.name.title().replace('_', '')}Error",
        (RelayedError,),
        {"code": code, "reason": code.name},
    )
    for code in grpc.StatusCode
}


def relayed_error(status: status_pb2.Status) -> RelayedError:
    """The error for `status` (its class carries the status's gRPC code)."""
    return _BY_CODE.get(status.code, RelayedError)(status)
