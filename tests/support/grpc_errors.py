"""What a failed call says in its google.rpc details (a gRPC error or a REST error body)."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def bad_request_fields(exc: grpc.aio.AioRpcError) -> set[str]:
    """Field paths of the google.rpc.BadRequest carried by an error."""
    status = rpc_status.from_call(exc)
    assert status is not None, "the error carries no google.rpc.Status details"
    fields: set[str] = set()
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields.update(v.field for v in bad_request.field_violations)
    return fields


def violations(body: dict[str, Any]) -> dict[str, str]:
    """field -> description of the google.rpc.BadRequest in an error body."""
    out = {}
    for detail in body["details"]:
        if detail["@type"].endswith("google.rpc.BadRequest"):
            out.update({v["field"]: v["description"] for v in detail["fieldViolations"]})
    return out
