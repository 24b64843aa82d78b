"""The REST/JSON facade as a pure ASGI application: one request's dispatch, top to bottom.

A request goes: request id -> CORS -> fixed pages (/openapi.json, /docs, /redoc, /healthz) or
the router (404 / 405 with Allow) -> body (413, 415, 400 saying where) -> request message ->
headers to metadata and deadline -> the method, in-process through the server's interceptors
-> JSON, NDJSON or Server-Sent Events. Every failure is a google.rpc.Status JSON body with the
HTTP status grpc-gateway gives its code, and one JSON access-log line per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Tracer

from ponder_rest.codec import dumps
from ponder_rest.config import FacadeConfig
from ponder_rest.context import call_context
from ponder_rest.cors import Cors
from ponder_rest.docs import DocsAssets
from ponder_rest.errors import (
    ClientGoneError,
    HttpError,
    bad_request,
    error,
    not_allowed,
    send_error,
)
from ponder_rest.exchange import Exchange, Receive, Scope, Send
from ponder_rest.forward import Forwarder, Invoker
from ponder_rest.httpbody import bind_http_body, takes_http_body
from ponder_rest.observe import Observer, logger
from ponder_rest.pages import Pages
from ponder_rest.routes import BadPathError, MethodNotAllowedError, NoRouteError, Route, Router
from ponder_rest.transcoder import BodyMemo, RequestError, build_request, parse_query
from ponder_runtime.ids import RandomIds
from ponder_runtime.metrics import RpcMetrics


__all__ = ["FacadeConfig", "Invoker", "RestFacade"]

_JSON_TYPES = ("application/json", "application/x-ndjson")


class RestFacade:
    """The ASGI application."""

    def __init__(
        self,
        routes: Sequence[Route],
        invoker: Invoker,
        openapi: dict[str, Any],
        *,
        config: FacadeConfig,
        assets: DocsAssets | None = None,
        tracer: Tracer | None = None,
        meter: metrics.Meter | None = None,
        rpc_metrics: RpcMetrics | None = None,
        title: str = "Ponder API",
    ) -> None:
        self._router = Router(list(routes))
        self._config = config
        self._bodies = BodyMemo()
        self._ids = RandomIds()  # request ids
        self._cors = Cors(config)
        self._forward = Forwarder(invoker, config)
        self._pages = Pages(
            invoker,
            dumps(openapi),
            assets=assets,
            title=title,
            health_service=config.health_service,
        )
        self._observer = Observer(
            tracer or trace.get_tracer(__name__),
            meter or metrics.NoOpMeter(__name__),
            access_log=config.access_log,
            rpc_metrics=rpc_metrics,  # none: rpc.server.* instruments of `meter`
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        exchange = Exchange(scope, self._ids)
        with self._observer.request(exchange) as span:
            try:
                await self._handle(exchange, receive, send, span)
            except HttpError as exc:
                exchange.rpc_code = exc.status.code
                await send_error(exchange, send, exc)
            except ClientGoneError:
                exchange.rpc_code = grpc.StatusCode.CANCELLED.value[0]
                exchange.status = exchange.status or 499
            except Exception:
                logger.exception("unexpected error in the REST facade")
                exchange.rpc_code = grpc.StatusCode.INTERNAL.value[0]
                await send_error(exchange, send, error(grpc.StatusCode.INTERNAL, "internal error"))

    async def _handle(self, exchange: Exchange, receive: Receive, send: Send, span: Span) -> None:
        self._cors.apply(exchange)
        path: str = exchange.scope["path"]
        if exchange.method == "OPTIONS":
            await self._cors.options(exchange, send, self._allowed(exchange))
            return
        page = self._pages.find(path)
        if page is not None:
            exchange.route, serve = page
            if exchange.method not in ("GET", "HEAD"):
                raise not_allowed(["GET"])
            await serve(exchange, send)
            return
        raw = exchange.scope.get("raw_path") or path.encode()
        try:
            route, bindings = self._router.match(exchange.method, raw.decode("latin-1"))
        except NoRouteError:
            raise error(grpc.StatusCode.NOT_FOUND, f"no route for {path}") from None
        except BadPathError as exc:
            raise HttpError(400, bad_request("path", f"{raw.decode('latin-1')}: {exc}")) from None
        except MethodNotAllowedError as exc:
            raise not_allowed(exc.allowed) from None
        self._observer.routed(exchange, span, route)
        upload = takes_http_body(route)
        limit = self._config.max_upload_bytes if upload else self._config.max_body_bytes
        body = await _read_body(exchange, receive, route, limit, raw=upload)
        try:
            query = parse_query(exchange.scope["query_string"])
            if upload:
                request = build_request(route, bindings, query, b"")
                content_type = exchange.header(b"content-type")
                bind_http_body(route, request, body, content_type, bindings)
            else:
                request = build_request(route, bindings, query, body, self._bodies)
        except RequestError as exc:
            raise HttpError(400, exc.status) from None
        context = call_context(exchange, self._config.default_timeout_seconds)
        await self._forward(exchange, receive, send, route=route, request=request, context=context)

    def _allowed(self, exchange: Exchange) -> list[str]:
        """The methods the request's path accepts (GET for the fixed pages)."""
        path = exchange.scope["path"]
        if self._pages.find(path) is not None:
            return ["GET"]
        raw = (exchange.scope.get("raw_path") or path.encode()).decode("latin-1")
        return self._router.allowed(raw)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(
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
