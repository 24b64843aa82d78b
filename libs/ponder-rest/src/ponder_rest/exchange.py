"""One HTTP request's state (headers, response headers, timing) and the plain response writer."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ponder_runtime.ids import RandomIds


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class Exchange:
    """One request's state: headers, response headers, timing."""

    __slots__ = (
        "cors",
        "headers",
        "method",
        "request_id",
        "response_headers",
        "route",
        "rpc_code",
        "rpc_method",
        "scope",
        "started",
        "status",
    )

    def __init__(self, scope: Scope, ids: RandomIds | None = None) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            self.headers[key] = (
                value if key not in self.headers else self.headers[key] + b"," + value
            )
        given = self.headers.get(b"x-request-id", b"").decode("latin-1")
        if _REQUEST_ID.fullmatch(given):
            self.request_id = given
        else:
            self.request_id = ids.hex() if ids is not None else os.urandom(16).hex()
        self.response_headers: Headers = [(b"x-request-id", self.request_id.encode())]
        self.started = time.perf_counter()
        self.status = 0
        self.cors = False
        self.route = ""  # the matched path template (or fixed page), for the metrics
        self.rpc_method = ""  # the method a matched route calls ("/pkg.Service/Method")
        self.rpc_code = 0  # the gRPC status code of the answer (0: OK), for the rpc metrics

    def header(self, name: bytes) -> str:
        """A request header (repeated ones joined with commas), "" when absent."""
        return self.headers.get(name, b"").decode("latin-1")


async def respond(
    exchange: Exchange,
    send: Send,
    status: int,
    body: bytes,
    *,
    kind: bytes,
    headers: Headers | None = None,
) -> None:
    """Send a whole response (no body for HEAD) with its Content-Type and Content-Length."""
    exchange.status = status
    out = [
        *(headers if headers is not None else exchange.response_headers),
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": b"" if exchange.method == "HEAD" else body})
