"""OpenAPI 3.1 document of the REST/JSON facade, built from its routes and the proto comments.

The document describes what the facade speaks, which is the proto3 JSON mapping as
grpc-gateway v2 serves it:

* properties are lowerCamelCase JSON names (proto field names with `use_proto_names`), and
  unpopulated fields are emitted;
* 64-bit integers are strings, enums are their value names, well-known types take their
  JSON forms (Timestamp: RFC 3339, Duration: "1.5s", FieldMask: "a.b,c", wrappers: the
  wrapped value, Struct / Value / ListValue / Any as the mapping says);
* path variables bind request fields; with `body: "*"` there are no query parameters,
  otherwise every leaf field bound neither by the path nor by the body is a query parameter,
  named by its dotted path (`parameters.maxSources`), repeated fields exploded;
* every error is a google.rpc.Status (`{"code", "message", "details"}`);
* a server-streaming method answers 200 with newline-delimited `{"result": ...}` objects (a
  final `{"error": Status}` on failure), or Server-Sent Events on `Accept: text/event-stream`.

Field, message, enum, service and method descriptions are their proto comments.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ponder_rest.comments import DescriptorComments
from ponder_rest.openapi.operations import operation
from ponder_rest.openapi.paths import documented_path
from ponder_rest.openapi.schemas import Schemas
from ponder_rest.openapi.text import markdown_of, summary_of
from ponder_rest.routes import Route


__all__ = ["OPENAPI_VERSION", "build_openapi", "markdown_of", "summary_of"]

OPENAPI_VERSION = "3.1.0"
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def build_openapi(
    routes: Iterable[Route],
    comments: DescriptorComments,
    *,
    title: str,
    version: str,
    description: str = "",
    use_proto_names: bool = False,
    servers: Sequence[str | Mapping[str, Any]] | None = None,
    expand_path_patterns: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of `routes`, documented with `comments`.

    `use_proto_names` names properties and query parameters by proto field names instead of
    lowerCamelCase JSON names (as the facade's option of the same name does).

    A path variable with a pattern, `{name=workflows/*}`, is documented as the single
    parameter `/v1/{name}` (the grpc-gateway form; its value holds a slash). With
    `expand_path_patterns` it becomes `/v1/workflows/{workflow}` instead: one parameter per
    wildcard segment, which generic HTTP clients (Swagger UI's "Try it out" among them) can
    fill without percent-encoding a slash. Two routes that would share a documented path and
    method are told apart by expanding the later one.
    """
    schemas = Schemas(comments, use_proto_names=use_proto_names)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, str]] = {}
    for route in routes:
        verb = route.http_method.lower()
        if verb not in _OPENAPI_METHODS:
            continue  # a custom HttpRule verb OpenAPI cannot express
        service = route.method.containing_service
        if service.name not in tags:
            tags[service.name] = {"name": service.name}
            if comment := schemas.doc(service.full_name):
                tags[service.name]["description"] = comment
        path, path_params = documented_path(schemas, route, expand=expand_path_patterns)
        if verb in paths.get(path, {}) and not expand_path_patterns:
            path, path_params = documented_path(schemas, route, expand=True)
        if verb in paths.get(path, {}):
            raise ValueError(
                f"{route.method.full_name}: {route.http_method} {path} is documented twice"
            )
        paths.setdefault(path, {})[verb] = operation(schemas, route, path_params)
    schemas.ensure_status()
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    if servers:
        document["servers"] = [
            {"url": server} if isinstance(server, str) else dict(server) for server in servers
        ]
    document["tags"] = list(tags.values())
    document["paths"] = paths
    document["components"] = {"schemas": dict(sorted(schemas.components.items()))}
    return document
