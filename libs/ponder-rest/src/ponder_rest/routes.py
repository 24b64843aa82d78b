"""HTTP routes built from the `google.api.http` options of gRPC methods, and the router.

One Route per HttpRule (the primary rule and each of its `additional_bindings`). Every rule is
checked at start-up against the request and response messages, so a bad annotation fails the
process with a message naming the method, instead of failing a request later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cachetools import LRUCache
from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from ponder_rest.fields import FieldPathError, resolve
from ponder_rest.template import PathTemplate, TemplateError, parse_template


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP binding of one gRPC method."""

    method: MethodDescriptor
    http_method: str
    template: PathTemplate
    body: str  # "" (no body), "*" (the whole request) or a top-level request field
    response_body: str  # "" (the whole response) or a top-level response field
    binding: int  # 0 for the primary rule, 1.. for additional_bindings

    @property
    def grpc_path(self) -> str:
        """The method's gRPC path, "/package.Service/Method"."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        """Whether the method streams its responses."""
        return bool(self.method.server_streaming)

    @property
    def operation_id(self) -> str:
        """Unique per route: Service_Method, suffixed _1, _2 for additional bindings."""
        base = f"{self.method.containing_service.name}_{self.method.name}"
        return f"{base}_{self.binding}" if self.binding else base

    def request_class(self) -> type[Message]:
        """The request message class."""
        return _message_class(self.method.input_type)

    def response_class(self) -> type[Message]:
        """The response message class."""
        return _message_class(self.method.output_type)


def _message_class(descriptor: Descriptor) -> type[Message]:
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


def _check_path_variable(method: MethodDescriptor, field_path: str) -> None:
    where = f"{method.full_name}: path variable {{{field_path}}}"
    try:
        leaf = resolve(method.input_type, field_path, json_names=False)[-1]
    except FieldPathError as exc:
        name = repr(exc.part)
        problem = f"{name} is repeated" if exc.repeated else f"no field {name} in the request"
        raise TemplateError(f"{where}: {problem}") from None
    if leaf.is_repeated or leaf.message_type is not None:
        raise TemplateError(f"{where}: must name a non-repeated primitive field")


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule, binding: int) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise TemplateError(f"{method.full_name}: HttpRule has no pattern")
    if kind == "custom":
        verb, path = rule.custom.kind.upper(), rule.custom.path
    else:
        verb, path = kind.upper(), getattr(rule, kind)
    try:
        template = parse_template(path)
    except TemplateError as exc:
        raise TemplateError(f"{method.full_name}: {exc}") from None
    for variable in template.variables:
        _check_path_variable(method, variable.field_path)
    if rule.body not in ("", "*") and rule.body not in method.input_type.fields_by_name:
        raise TemplateError(f"{method.full_name}: body field {rule.body!r} is not in the request")
    if rule.response_body and rule.response_body not in method.output_type.fields_by_name:
        raise TemplateError(
            f"{method.full_name}: response_body {rule.response_body!r} is not in the response"
        )
    if method.client_streaming:
        raise TemplateError(f"{method.full_name}: client streaming is not supported over HTTP")
    return Route(method, verb, template, rule.body, rule.response_body, binding)


def routes_of(method: MethodDescriptor) -> list[Route]:
    """The routes of one method (none when it carries no google.api.http option)."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule = options.Extensions[annotations_pb2.http]
    routes = [_route(method, rule, 0)]
    for index, extra in enumerate(rule.additional_bindings, start=1):
        if extra.additional_bindings:
            raise TemplateError(f"{method.full_name}: additional_bindings cannot be nested")
        routes.append(_route(method, extra, index))
    return routes


def build_routes(services: Iterable[Any]) -> list[Route]:
    """Routes of every annotated method of the given ServiceDescriptors; raises TemplateError
    for a bad rule or for two rules claiming the same method and path."""
    routes = [r for service in services for m in service.methods for r in routes_of(m)]
    seen: dict[tuple[str, str], str] = {}
    for route in routes:
        key = (route.http_method, route.template.regex.pattern)
        if key in seen:
            raise TemplateError(
                f"{route.method.full_name} and {seen[key]} both bind "
                f"{route.http_method} {route.template.source}"
            )
        seen[key] = route.method.full_name
    return routes


class NoRouteError(LookupError):
    """No route matches the path (HTTP 404)."""


class BadPathError(ValueError):
    """The path has a malformed percent escape such as `%zz` (HTTP 400)."""


_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class MethodNotAllowedError(LookupError):
    """Routes match the path, but not with this HTTP method (HTTP 405)."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


_MEMO_MAX_PATH = 512  # longer paths are matched every time, not kept


class Router:
    """Finds the route and bound path variables for a method and a raw path."""

    def __init__(self, routes: list[Route], *, memo_entries: int = 1024) -> None:
        self.routes = routes
        # Recent matches by (method, path): the same path always matches the same way
        # (cachetools LRU: the least recently used goes first).
        self._memo: LRUCache[tuple[str, str], tuple[Route, dict[str, str]]] | None = (
            LRUCache(maxsize=memo_entries) if memo_entries > 0 else None
        )
        # Most specific first: a custom verb, then more literal segments, then no `**`.
        self._ordered = sorted(
            self.routes,
            key=lambda r: (
                not r.template.verb,
                -r.template.literal_count,
                r.template.has_double_wildcard,
            ),
        )

    @cached_property
    def paths(self) -> dict[str, list[Route]]:
        """OpenAPI path -> its routes (for documentation)."""
        out: dict[str, list[Route]] = {}
        for route in self.routes:
            out.setdefault(route.template.openapi_path, []).append(route)
        return out

    def match(self, http_method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path bindings; raises NoRouteError, MethodNotAllowedError or
        BadPathError."""
        key = (http_method, raw_path)
        found = self._memo.get(key) if self._memo is not None else None
        if found is not None:
            return found[0], dict(found[1])
        malformed = _MALFORMED_ESCAPE.search(raw_path)
        if malformed is not None:
            escape = raw_path[malformed.start() : malformed.start() + 3]
            raise BadPathError(f"malformed percent escape {escape!r} at {malformed.start() + 1}")
        route, bindings = self._match(http_method, raw_path)
        if self._memo is not None and len(raw_path) <= _MEMO_MAX_PATH:
            self._memo[key] = (route, dict(bindings))
        return route, bindings

    def _match(self, http_method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        for route in self._ordered:
            if route.http_method != http_method:
                continue
            bindings = route.template.match(raw_path)
            if bindings is not None:
                return route, bindings
        allowed = self.allowed(raw_path)
        if allowed:
            raise MethodNotAllowedError(allowed)
        raise NoRouteError(raw_path)

    def allowed(self, raw_path: str) -> list[str]:
        """The methods `raw_path` takes, sorted, as the OpenAPI document has them: a path
        that a custom-verb route matches (`/v1/x/a:watch`) takes that verb's methods only,
        even where a verb-less `{name=x/*}` would also take "a:watch" as a name."""
        matching = [route for route in self._ordered if route.template.match(raw_path) is not None]
        if not matching:
            return []
        verb = matching[0].template.verb  # the most specific kind comes first
        return sorted({route.http_method for route in matching if route.template.verb == verb})
