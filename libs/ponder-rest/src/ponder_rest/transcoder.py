"""An HTTP request (path bindings, query, JSON body) into the request message of its route.

Order, as in grpc-gateway: the body first, then path variables (the resource in the URL wins),
then query parameters for the fields neither of them binds. Every problem becomes a
google.rpc.Status (INVALID_ARGUMENT with a BadRequest naming the field) in `RequestError`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from cachetools import LRUCache
from google.protobuf.message import Message
from google.rpc import status_pb2

from ponder_rest.codec import BodyError, loads, parse_into
from ponder_rest.errors import bad_request
from ponder_rest.fields import FieldValueError, canonical_path, resolve, set_values
from ponder_rest.routes import Route


MAX_QUERY_FIELDS = 1000


class RequestError(Exception):
    """The HTTP request does not make a valid request message."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


def parse_query(query_string: bytes) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs; invalid UTF-8 or too many fields is a RequestError."""
    if not query_string:
        return []
    try:
        return parse_qsl(
            query_string.decode("utf-8", "strict"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except UnicodeError:
        raise RequestError(bad_request("query", "the query string is not valid UTF-8")) from None
    except ValueError:
        raise RequestError(
            bad_request("query", f"more than {MAX_QUERY_FIELDS} query parameters")
        ) from None


class BodyMemo:
    """Recently parsed request bodies, as the bytes of the message they gave: the same JSON
    for the same method always parses the same way, and merging bytes is much cheaper than
    reading JSON. Small bodies only; failures are not kept (each gets its own error)."""

    def __init__(self, *, max_entries: int = 256, max_body_bytes: int = 4096) -> None:
        self._max = max_entries
        self._max_body = max_body_bytes
        # cachetools LRU: the least recently used goes first.
        self._parsed: LRUCache[tuple[str, bytes], bytes] = LRUCache(max(max_entries, 1))

    def apply(self, route: Route, request: Message, body: bytes) -> None:
        """Set the fields `body` gives `request` (which must still be empty)."""
        if self._max <= 0 or len(body) > self._max_body:
            _apply_body(route, request, body)
            return
        key = (route.method.full_name, body)
        found = self._parsed.get(key)
        if found is not None:
            request.MergeFromString(found)
            return
        _apply_body(route, request, body)
        self._parsed[key] = request.SerializeToString()


def build_request(
    route: Route,
    bindings: dict[str, str],
    query: list[tuple[str, str]],
    body: bytes,
    memo: BodyMemo | None = None,
) -> Message:
    """The request message for `route`, or RequestError saying which field is wrong."""
    request = route.request_class()()
    if route.body and body.strip():
        if memo is not None:
            memo.apply(route, request, body)
        else:
            _apply_body(route, request, body)
    for field_path, value in bindings.items():
        chain = resolve(request.DESCRIPTOR, field_path)
        try:
            set_values(request, chain, [value])
        except FieldValueError as exc:
            raise RequestError(bad_request(field_path, f"path value {exc}")) from None
    if query:
        _apply_query(route, request, bindings, query)
    return request


def _apply_body(route: Route, request: Message, body: bytes) -> None:
    where = "body" if route.body == "*" else route.body
    try:
        payload = loads(body)
        if route.body == "*":
            if not isinstance(payload, dict):
                raise BodyError(f"expected a JSON object, got {type(payload).__name__}")
            parse_into(payload, request)
        else:
            parse_into({route.body: payload}, request)
    except BodyError as exc:
        raise RequestError(bad_request(where, str(exc))) from None


def _apply_query(
    route: Route, request: Message, bindings: dict[str, str], query: list[tuple[str, str]]
) -> None:
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        grouped.setdefault(name, []).append(value)
    for name, values in grouped.items():
        if not name:  # "?=value": nothing to name but the query string itself
            raise RequestError(bad_request("query", 'a query parameter without a name ("=value")'))
        if route.body == "*":
            raise RequestError(
                bad_request(name, "query parameters are not accepted: send fields in the body")
            )
        try:
            chain = resolve(request.DESCRIPTOR, name)
        except FieldValueError as exc:
            raise RequestError(bad_request(name, f"unknown query parameter ({exc})")) from None
        path = canonical_path(chain)
        if route.body and (path == route.body or path.startswith(route.body + ".")):
            raise RequestError(bad_request(name, f"set in the body ({route.body})"))
        if any(path == bound or path.startswith(bound + ".") for bound in bindings):
            raise RequestError(bad_request(name, "set by the URL path"))
        try:
            set_values(request, chain, values)
        except FieldValueError as exc:
            raise RequestError(bad_request(name, str(exc))) from None
