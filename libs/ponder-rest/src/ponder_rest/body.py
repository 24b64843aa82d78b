"""The request body: its size limit (413), its Content-Type (415), a client gone mid-body."""

from __future__ import annotations

import grpc

from ponder_rest.errors import ClientGoneError, HttpError, error
from ponder_rest.exchange import Exchange, Receive
from ponder_rest.routes import Route


_JSON_TYPES = ("application/json", "application/x-ndjson")


async def read_body(
    exchange: Exchange, receive: Receive, route: Route, limit: int, *, raw: bool = False
) -> bytes:
    """The whole body, at most `limit` bytes, JSON when the route takes one (any media type
    when `raw`: the route's body is a google.api.HttpBody)."""
    declared = exchange.header(b"content-length")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if body and route.body and not raw:
        kind = exchange.header(b"content-type").split(";", 1)[0].strip().lower()
        if kind and kind not in _JSON_TYPES and not kind.endswith("+json"):
            raise error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unsupported Content-Type {kind!r}: send application/json",
                415,
            )
    return body


def _too_large(limit: int) -> HttpError:
    return error(grpc.StatusCode.RESOURCE_EXHAUSTED, f"the request body is over {limit} bytes", 413)
