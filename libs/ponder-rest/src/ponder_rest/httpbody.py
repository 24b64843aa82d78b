"""Routes whose body field is a `google.api.HttpBody`: the HTTP body is the raw bytes (the
field's `data`, the Content-Type header its `content_type`), as in grpc-gateway; or, beyond
grpc-gateway, a `multipart/form-data` form whose part named after the body field is the file
(its bytes and its own Content-Type) and whose other parts set request fields by name, as
query parameters do. Generic: no knowledge of any particular service."""

from __future__ import annotations

from google.protobuf.message import Message

from ponder_rest.errors import bad_request
from ponder_rest.fields import FieldValueError, canonical_path, resolve, set_values
from ponder_rest.multipart import MultipartError, is_form_data, parse_form_data
from ponder_rest.routes import Route
from ponder_rest.transcoder import RequestError


HTTP_BODY = "google.api.HttpBody"
DEFAULT_MEDIA_TYPE = "application/octet-stream"


def takes_http_body(route: Route) -> bool:
    """Whether the route's body field is a google.api.HttpBody."""
    if route.body in ("", "*"):
        return False
    body = route.method.input_type.fields_by_name.get(route.body)
    return (
        body is not None
        and body.message_type is not None
        and (body.message_type.full_name == HTTP_BODY)
    )


def bind_http_body(
    route: Route, request: Message, body: bytes, content_type: str, bindings: dict[str, str]
) -> None:
    """Set the HttpBody field (and, for a form, the fields its other parts name)."""
    target = getattr(request, route.body)
    if not is_form_data(content_type):
        target.content_type = content_type or DEFAULT_MEDIA_TYPE
        target.data = body
        return
    try:
        parts = parse_form_data(body, content_type)
    except MultipartError as exc:
        raise RequestError(bad_request("body", str(exc))) from None
    files = [part for part in parts if part.name == route.body]
    if len(files) != 1:
        raise RequestError(
            bad_request(route.body, f"the form needs exactly one part named {route.body!r}")
        )
    target.content_type = files[0].content_type or DEFAULT_MEDIA_TYPE
    target.data = bytes(files[0].data)
    for part in parts:
        if part.name == route.body:
            continue
        try:
            chain = resolve(request.DESCRIPTOR, part.name)
        except FieldValueError as exc:
            raise RequestError(bad_request(part.name, f"unknown form field ({exc})")) from None
        path = canonical_path(chain)
        if path == route.body or path.startswith(route.body + "."):
            raise RequestError(bad_request(part.name, f"set by the part {route.body!r}"))
        if any(path == bound or path.startswith(bound + ".") for bound in bindings):
            raise RequestError(bad_request(part.name, "set by the URL path"))
        try:
            text = bytes(part.data).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(bad_request(part.name, "a form field must be UTF-8 text")) from None
        try:
            set_values(request, chain, [text])
        except FieldValueError as exc:
            raise RequestError(bad_request(part.name, str(exc))) from None
