"""Regressions found by fuzzing the REST facade with schemathesis (tests/integration/
test_rest_fuzz.py), each pinned here without a server."""

from __future__ import annotations

import math

import pytest
from google.rpc import error_details_pb2

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_rest.routes import Route, build_routes
from ponder_rest.transcoder import RequestError, build_request
from ponder_testing.transcoding.v1 import transcoding_pb2 as pb


ROUTES = build_routes(
    [
        pb.DESCRIPTOR.services_by_name["TranscodingService"],
        workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"],
    ]
)


def _route(operation_id: str) -> Route:
    return next(r for r in ROUTES if r.operation_id == operation_id)


def _violations(error: RequestError) -> dict[str, str]:
    assert error.status.code == 3  # INVALID_ARGUMENT
    found = error_details_pb2.BadRequest()
    assert any(detail.Unpack(found) for detail in error.status.details)
    return {v.field: v.description for v in found.field_violations}


@pytest.mark.parametrize(
    ("operation_id", "body", "description"),
    [
        (
            "TranscodingService_EchoQuery_1",
            b'{"doubleValue": false}',
            "cannot parse doubleValue field: false is not a number",
        ),
        (
            "TranscodingService_EchoQuery_1",
            b'{"float_value": true}',
            "cannot parse float_value field: true is not a number",
        ),
        (  # body: "workflow", the double two messages down
            "WorkflowService_CreateWorkflow",
            b'{"kind": "WORKFLOW_KIND_REFLECTION", "parameters": {"scoreThreshold": true}}',
            "cannot parse scoreThreshold field: true is not a number",
        ),
    ],
)
def test_a_boolean_is_not_a_float(operation_id: str, body: bytes, description: str) -> None:
    """`{"scoreThreshold": false}` was accepted as 0.0 (POST /v1/reflection:streamReflect
    answered 200): protobuf's Python JSON parser takes a bool for a float or double, where
    the proto3 JSON mapping and grpc-gateway refuse it. Now it is a 400 naming the field."""
    route = _route(operation_id)
    with pytest.raises(RequestError) as caught:
        build_request(route, {}, [], body)
    where = "body" if route.body == "*" else route.body
    assert _violations(caught.value) == {where: description}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"1.5", 1.5), (b"0", 0.0), (b'"2.5"', 2.5), (b'"-Infinity"', -math.inf), (b"null", 0.0)],
)
def test_numbers_and_their_string_forms_are_still_floats(value: bytes, expected: float) -> None:
    """What the proto3 JSON mapping allows for a double still parses, next to a real bool."""
    body = b'{"doubleValue": ' + value + b', "boolValue": true}'
    request = build_request(_route("TranscodingService_EchoQuery_1"), {}, [], body)
    assert isinstance(request, pb.EchoQueryRequest)
    assert (request.double_value, request.bool_value) == (expected, True)


@pytest.mark.parametrize(
    ("operation_id", "body", "description"),
    [
        (  # the finding: POST /v1/workflows/research answered 200
            "WorkflowService_RunResearchWorkflow",
            b'{"topic": "then", "parameters": []}',
            "cannot parse parameters field: expected a JSON object, got list",
        ),
        (
            "WorkflowService_RunResearchWorkflow",
            b'{"topic": "then", "parameters": ""}',
            "cannot parse parameters field: expected a JSON object, got str",
        ),
        (  # body: "workflow" itself
            "WorkflowService_CreateWorkflow",
            b"[]",
            "cannot parse workflow field: expected a JSON object, got list",
        ),
    ],
)
def test_an_empty_list_or_string_is_not_a_message(
    operation_id: str, body: bytes, description: str
) -> None:
    """`{"parameters": []}` was accepted as empty parameters: protobuf's Python JSON parser
    iterates the value as the keys of an object, so [] and "" pass as {}. The proto3 JSON
    mapping and grpc-gateway want an object (or null); now it is a 400 naming the field."""
    route = _route(operation_id)
    with pytest.raises(RequestError) as caught:
        build_request(route, {}, [], body)
    where = "body" if route.body == "*" else route.body
    assert _violations(caught.value) == {where: description}


def test_objects_null_and_well_known_forms_still_fill_messages() -> None:
    """An object or null still sets a message field, and the well-known types keep their own
    JSON forms (an empty FieldMask is "", a wrapper its bare value)."""
    body = (
        b'{"nested": {}, "fieldMask": "", "int32Wrapper": 3, "durationValue": "1.5s", '
        b'"timestampValue": null}'
    )
    request = build_request(_route("TranscodingService_EchoQuery_1"), {}, [], body)
    assert isinstance(request, pb.EchoQueryRequest)
    assert request.HasField("nested")
    assert request.HasField("field_mask")
    assert request.int32_wrapper.value == 3
    assert request.duration_value.ToMilliseconds() == 1500
    assert not request.HasField("timestamp_value")
