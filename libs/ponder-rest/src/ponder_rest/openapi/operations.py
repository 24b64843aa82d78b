"""OpenAPI operations: the summary, request body and responses (JSON, NDJSON, SSE) of a route."""

from collections.abc import Mapping
from typing import Any

from ponder_rest.httpbody import takes_http_body
from ponder_rest.openapi.parameters import query_parameters
from ponder_rest.openapi.schemas import STATUS_SCHEMA, Schemas
from ponder_rest.openapi.text import summary_of
from ponder_rest.routes import Route


# HTTP statuses the facade answers with, and the gRPC codes behind them.
ERROR_STATUSES: Mapping[int, str] = {
    400: "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE, or a request that cannot be "
    "parsed",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND, or no route for the path",
    405: "the path exists, but not with this HTTP method",
    409: "ALREADY_EXISTS or ABORTED",
    413: "the request body is too large (JSON bodies and file uploads have their own limits)",
    415: "the request body is not application/json (file uploads take any media type)",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL, UNKNOWN or DATA_LOSS",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def operation(schemas: Schemas, route: Route, path_params: list[dict[str, Any]]) -> dict[str, Any]:
    """The operation object of a route: summary, parameters, body and responses."""
    method = route.method
    text = schemas.doc(method.full_name)
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [method.containing_service.name],
    }
    if text:
        operation["summary"] = summary_of(text)
        if operation["summary"] != text:  # no repeat of a one-sentence comment
            operation["description"] = text
    parameters = path_params + query_parameters(schemas, route)
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        operation["requestBody"] = _request_body(schemas, route)
    operation["responses"] = {
        "200": _success_response(schemas, route),
        "default": _error_response(schemas),
    }
    if method.GetOptions().deprecated:
        operation["deprecated"] = True
    return operation


def _upload_body(schemas: Schemas, route: Route) -> dict[str, Any]:
    """A google.api.HttpBody body: the raw file in any media type, or a multipart form with
    the file in the part named after the body field and other fields as parts."""
    request = route.method.input_type
    body = request.fields_by_name[route.body]
    bound = {v.field_path.split(".", 1)[0] for v in route.template.variables}
    fields: dict[str, Any] = {
        route.body: {
            "type": "string",
            "format": "binary",
            "description": "The file; the part's Content-Type is its media type.",
        }
    }
    for descriptor in request.fields:
        if descriptor.name in bound or descriptor.name == route.body:
            continue
        if descriptor.message_type is not None:
            continue  # forms carry scalar fields
        fields[schemas.name_of(descriptor)] = schemas.field_schema(descriptor)
    text = schemas.doc(body.full_name)
    return {
        "required": True,
        "description": (f"{text}\n\n" if text else "")
        + "The raw file as the body (its Content-Type is the media type; other fields go in "
        f"the query string), or a `multipart/form-data` form: the part `{route.body}` is the "
        "file, other parts set the fields they name.",
        "content": {
            "*/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": fields, "required": [route.body]},
                "encoding": {route.body: {"contentType": "*/*"}},
            },
        },
    }


def _request_body(schemas: Schemas, route: Route) -> dict[str, Any]:
    if takes_http_body(route):
        return _upload_body(schemas, route)
    request = route.method.input_type
    bound = frozenset(v.field_path for v in route.template.variables)
    if route.body == "*":
        schema = schemas.message_schema(request, bound) if bound else schemas.message_ref(request)
        text = schemas.doc(request.full_name)
    else:
        body = request.fields_by_name[route.body]
        prefix = f"{route.body}."
        nested = frozenset(p[len(prefix) :] for p in bound if p.startswith(prefix))
        schema = schemas.field_schema(body, nested)
        text = schemas.doc(body.full_name)
    out: dict[str, Any] = {"required": True}
    if text:
        out["description"] = text
    out["content"] = {"application/json": {"schema": schema}}
    return out


def _success_response(schemas: Schemas, route: Route) -> dict[str, Any]:
    response = route.method.output_type
    if route.response_body:
        body = response.fields_by_name[route.response_body]
        schema, text = schemas.field_schema(body), schemas.doc(body.full_name)
    else:
        schema, text = schemas.message_ref(response), schemas.doc(response.full_name)
    if not route.server_streaming:
        return {
            "description": text or "The response.",
            "content": {"application/json": {"schema": schema}},
        }
    name = f"StreamResult_{route.method.output_type.full_name}"
    if route.response_body:
        name += f".{route.response_body}"
    schemas.components[name] = {
        "type": "object",
        "description": (
            'One line of a newline-delimited JSON stream: `{"result": ...}` for each '
            'message, or a final `{"error": ...}` when the call fails.'
        ),
        "properties": {"result": schema, "error": schemas.ref(STATUS_SCHEMA)},
        "minProperties": 1,
        "maxProperties": 1,
    }
    framing = (
        "A stream of messages, sent as they come.\n\n"
        "Newline-delimited JSON (`application/json` by default, `application/x-ndjson` "
        'when the request accepts it): one object per line, `{"result": <message>}` for '
        'each message and, when the call fails after it started, a final `{"error": '
        "<google.rpc.Status>}`.\n\n"
        "Server-Sent Events with `Accept: text/event-stream`: `data: <message>` for each "
        "message; a failure ends the stream with `event: error` whose data is the "
        "google.rpc.Status, a success with `event: end`."
    )
    if text:
        framing = f"{text}\n\n{framing}"
    line = {"schema": schemas.ref(name)}
    return {
        "description": framing,
        "content": {
            "application/json": line,
            "application/x-ndjson": dict(line),
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": "Server-Sent Events: `data: <message JSON>` per message; "
                    "then `event: error` with `data: <google.rpc.Status JSON>` on failure, "
                    "or `event: end` on success.",
                }
            },
        },
    }


def _error_response(schemas: Schemas) -> dict[str, Any]:
    listing = "\n".join(f"- {code}: {why}" for code, why in ERROR_STATUSES.items())
    return {
        "description": f"An error, as a google.rpc.Status. HTTP statuses:\n\n{listing}",
        "content": {"application/json": {"schema": schemas.ref(STATUS_SCHEMA)}},
    }
