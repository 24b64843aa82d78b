"""HTTP headers to gRPC metadata and a deadline (grpc-gateway's AnnotateContext), and back."""

from __future__ import annotations

import base64
import re
import time

import grpc

from ponder_rest.errors import error
from ponder_rest.exchange import Exchange, Headers, Scope
from ponder_runtime.local import LocalContext


_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_GRPC_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])")
# Request headers forwarded under a grpcgateway- name (others are not forwarded as metadata).
_PERMANENT_FORWARD = {
    b"user-agent": "grpcgateway-user-agent",
    b"accept-language": "grpcgateway-accept-language",
    b"referer": "grpcgateway-referer",
}


def call_context(exchange: Exchange, default_timeout: float | None) -> LocalContext:
    """The in-process call's context: metadata, peer and deadline of the request."""
    return LocalContext(
        metadata(exchange), peer(exchange.scope), deadline(exchange, default_timeout)
    )


def metadata(exchange: Exchange) -> tuple[tuple[str, str | bytes], ...]:
    """grpc-gateway's mapping: Authorization and Grpc-Metadata-* forwarded, a few
    permanent headers as grpcgateway-*, X-Forwarded-For extended with the client."""
    out: list[tuple[str, str | bytes]] = []
    for key, value in exchange.headers.items():
        if key == b"authorization":
            out.append(("authorization", value.decode("latin-1")))
        elif key.startswith(b"grpc-metadata-"):
            name = key[len(b"grpc-metadata-") :].decode("latin-1")
            if name.endswith("-bin"):
                try:
                    out.append((name, base64.b64decode(value + b"=" * (-len(value) % 4))))
                except ValueError:
                    raise error(
                        grpc.StatusCode.INVALID_ARGUMENT, f"header {key.decode()} is not base64"
                    ) from None
            else:
                out.append((name, value.decode("latin-1")))
        elif key in _PERMANENT_FORWARD:
            out.append((_PERMANENT_FORWARD[key], value.decode("latin-1")))
    client = exchange.scope.get("client")
    if client:
        forwarded = exchange.header(b"x-forwarded-for")
        out.append(("x-forwarded-for", f"{forwarded}, {client[0]}" if forwarded else client[0]))
    host = exchange.header(b"x-forwarded-host") or exchange.header(b"host")
    if host:
        out.append(("x-forwarded-host", host))
    out.append(("x-request-id", exchange.request_id))
    return tuple(out)


def deadline(exchange: Exchange, default_timeout: float | None) -> float | None:
    """Grpc-Timeout ("30S", "1500m") or X-Request-Timeout (seconds), else the default."""
    seconds = default_timeout
    grpc_timeout = exchange.header(b"grpc-timeout")
    simple = exchange.header(b"x-request-timeout")
    if grpc_timeout:
        found = _GRPC_TIMEOUT.fullmatch(grpc_timeout.strip())
        if found is None:
            raise error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Grpc-Timeout {grpc_timeout!r} is not <digits><H|M|S|m|u|n>",
            )
        seconds = int(found.group(1)) * _TIMEOUT_UNITS[found.group(2)]
    elif simple:
        try:
            seconds = float(simple)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 86400:
            raise error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"X-Request-Timeout {simple!r} is not a number of seconds in (0, 86400]",
            )
    return None if seconds is None else time.monotonic() + seconds


def peer(scope: Scope) -> str:
    """The client, in gRPC's form ("ipv4:127.0.0.1:5000")."""
    client = scope.get("client")
    if not client:
        return "unix:"
    host, port = client[0], client[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


def metadata_headers(context: LocalContext) -> Headers:
    """The call's header and trailer metadata as Grpc-Metadata-* and Grpc-Trailer-* headers."""
    headers: Headers = []
    for key, value in context.initial:
        if isinstance(value, str):
            headers.append((f"grpc-metadata-{key}".encode(), value.encode("latin-1", "replace")))
    for key, value in context.trailing_metadata():
        if isinstance(value, str) and not key.startswith("grpc-"):
            headers.append((f"grpc-trailer-{key}".encode(), value.encode("latin-1", "replace")))
    return headers
