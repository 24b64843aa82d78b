"""CORS: allowed origins on every response, and OPTIONS preflights (204 with Allow)."""

from __future__ import annotations

import grpc

from ponder_rest.config import FacadeConfig
from ponder_rest.errors import error, not_allowed
from ponder_rest.exchange import Exchange, Send


# Headers a browser may send cross-origin, and the ones it may read back.
_ALLOW_HEADERS = (
    "authorization, content-type, x-request-id, grpc-timeout, x-request-timeout, "
    "traceparent, tracestate, last-event-id"
)
_EXPOSE_HEADERS = b"x-request-id, x-trace-id, retry-after, grpc-status, grpc-message"


class Cors:
    """The CORS policy of FacadeConfig (origins, credentials, preflight max age)."""

    def __init__(self, config: FacadeConfig) -> None:
        self._origins = frozenset(config.cors_origins)
        self._any_origin = "*" in self._origins
        self._credentials = config.cors_allow_credentials
        self._max_age = str(config.cors_max_age_seconds).encode()

    def apply(self, exchange: Exchange) -> None:
        """Add the Access-Control-* response headers when the request's origin is allowed."""
        origin = exchange.header(b"origin")
        if not origin or not (self._any_origin or origin in self._origins):
            return
        exchange.cors = True
        credentials = self._credentials and origin in self._origins
        allowed = origin if (credentials or not self._any_origin) else "*"
        exchange.response_headers.append((b"access-control-allow-origin", allowed.encode()))
        exchange.response_headers.append((b"access-control-expose-headers", _EXPOSE_HEADERS))
        if allowed != "*":
            exchange.response_headers.append((b"vary", b"Origin"))
        if credentials:
            exchange.response_headers.append((b"access-control-allow-credentials", b"true"))

    async def options(self, exchange: Exchange, send: Send, allowed: list[str]) -> None:
        """CORS preflight (204 with the allowed methods and headers), or a plain 204 + Allow."""
        if not allowed:
            raise error(grpc.StatusCode.NOT_FOUND, f"no route for {exchange.scope['path']}")
        requested = exchange.header(b"access-control-request-method")
        headers = [*exchange.response_headers, (b"allow", ", ".join(allowed).encode())]
        if requested:
            if not exchange.cors:
                raise error(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"origin {exchange.header(b'origin')!r} is not allowed",
                )
            if requested not in allowed:
                raise not_allowed(allowed)
            headers += [
                (b"access-control-allow-methods", ", ".join(allowed).encode()),
                (b"access-control-allow-headers", _allowed_headers(exchange)),
                (b"access-control-max-age", self._max_age),
            ]
        exchange.status = 204
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _allowed_headers(exchange: Exchange) -> bytes:
    requested = exchange.header(b"access-control-request-headers")
    allowed = {h.strip() for h in _ALLOW_HEADERS.split(",")}
    granted = [
        h.strip()
        for h in requested.lower().split(",")
        if h.strip() in allowed or h.strip().startswith("grpc-metadata-")
    ]
    return ", ".join(granted or sorted(allowed)).encode()
