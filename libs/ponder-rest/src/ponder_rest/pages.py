"""The fixed pages: /openapi.json, /docs and /redoc with their assets, and /healthz."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial

import grpc
from grpc_health.v1 import health_pb2

from ponder_rest.codec import dumps
from ponder_rest.context import peer
from ponder_rest.docs import DocsAssets, redoc_html, swagger_html
from ponder_rest.errors import HttpError, error, http_status
from ponder_rest.exchange import Exchange, Send, respond
from ponder_rest.forward import Invoker
from ponder_rest.transcoder import parse_query
from ponder_runtime.local import LocalCallError, LocalContext


_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_ASSETS = "/docs/assets/"

Page = Callable[[Exchange, Send], Awaitable[None]]


class Pages:
    """The pages served beside the routes (GET and HEAD only)."""

    def __init__(
        self,
        invoker: Invoker,
        openapi: bytes,
        *,
        assets: DocsAssets | None,
        title: str,
        health_service: str,
    ) -> None:
        self._invoker = invoker
        self._openapi = openapi
        self._assets = assets
        self._title = title
        self._health_service = health_service
        self._pages: dict[str, Page] = {
            "/openapi.json": self._openapi_page,
            "/docs": partial(self._html_page, swagger_html),
            "/redoc": partial(self._html_page, redoc_html),
            "/healthz": self._health_page,
        }

    def find(self, path: str) -> tuple[str, Page] | None:
        """The page at `path` and its route name for the metrics, or None."""
        page = self._pages.get(path)
        if page is not None:
            return path, page
        if path.startswith(_ASSETS):
            return _ASSETS + "{asset}", self._asset_page
        return None

    async def _openapi_page(self, exchange: Exchange, send: Send) -> None:
        await respond(exchange, send, 200, self._openapi, kind=b"application/json")

    async def _html_page(
        self, render: Callable[[str, str, str], str], exchange: Exchange, send: Send
    ) -> None:
        html = render("/openapi.json", "/docs/assets", self._title)
        await respond(exchange, send, 200, html.encode(), kind=b"text/html; charset=utf-8")

    async def _asset_page(self, exchange: Exchange, send: Send) -> None:
        name = exchange.scope["path"].removeprefix(_ASSETS)
        found = self._assets.asset(name) if self._assets is not None else None
        if found is None:
            raise error(grpc.StatusCode.NOT_FOUND, f"no asset {name!r}")
        content, kind = found
        headers = [*exchange.response_headers, (b"cache-control", b"public, max-age=86400")]
        await respond(exchange, send, 200, content, kind=kind.encode(), headers=headers)

    async def _health_page(self, exchange: Exchange, send: Send) -> None:
        """grpc.health.v1 Check: SERVING 200, NOT_SERVING 503, unknown service 404."""
        query = dict(parse_query(exchange.scope["query_string"]))
        service = query.get("service", self._health_service)
        context = LocalContext((), peer(exchange.scope), time.monotonic() + 5.0)
        try:
            reply = await self._invoker.unary(
                _HEALTH_CHECK, health_pb2.HealthCheckRequest(service=service), context
            )
        except LocalCallError as exc:
            raise HttpError(http_status(exc.status.code), exc.status) from None
        if isinstance(reply, bytes):
            reply = health_pb2.HealthCheckResponse.FromString(reply)
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        body = dumps({"status": health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)})
        await respond(exchange, send, 200 if serving else 503, body, kind=b"application/json")
