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

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import status_pb2

from ponder_rest.comments import DescriptorComments
from ponder_rest.routes import Route
from ponder_rest.template import Variable


OPENAPI_VERSION = "3.1.0"
STATUS_SCHEMA = "google.rpc.Status"
_REF = "#/components/schemas/"
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

# HTTP statuses the facade answers with, and the gRPC codes behind them.
ERROR_STATUSES: Mapping[int, str] = {
    400: "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE, or a request that cannot be "
    "parsed",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND, or no route for the path",
    405: "the path exists, but not with this HTTP method",
    409: "ALREADY_EXISTS or ABORTED",
    413: "the request body is too large",
    415: "the request body is not application/json",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL, UNKNOWN or DATA_LOSS",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_INT64_PATTERN = "^-?[0-9]+$"
_UINT64_PATTERN = "^[0-9]+$"
_DURATION_PATTERN = r"^-?[0-9]+(\.[0-9]{1,9})?s$"

_ANY_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "description": 'Any message, as its JSON form plus an "@type" naming its type.',
    "properties": {
        "@type": {
            "type": "string",
            "description": "The type of the message, "
            'e.g. "type.googleapis.com/google.rpc.ErrorInfo".',
        }
    },
    "required": ["@type"],
    "additionalProperties": True,
}

# Well-known types in their JSON forms, inlined wherever they are used.
_WELL_KNOWN: Mapping[str, Mapping[str, Any]] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "examples": ["2024-05-01T12:30:00.5Z"],
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": _DURATION_PATTERN,
        "examples": ["1.5s"],
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamelCase field paths.",
        "examples": ["displayName,parameters.maxSources"],
    },
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64", "pattern": _INT64_PATTERN},
    "google.protobuf.UInt64Value": {
        "type": "string",
        "format": "uint64",
        "pattern": _UINT64_PATTERN,
    },
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": _ANY_SCHEMA,
}
# Well-known types that can be written as one query or path parameter.
_WELL_KNOWN_SCALARS = frozenset(_WELL_KNOWN) - {
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Empty",
    "google.protobuf.Any",
}

_INT32 = (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32)
_UINT32 = (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32)
_INT64 = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64)
_UINT64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)
_MESSAGE_TYPES = (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"(])")
_CROSS_REFERENCE = re.compile(r"\[([^\[\]]+)\]\[[A-Za-z0-9_.]*\]")
_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")

_STATUS_DESCRIPTION = (
    "The error of a failed call: a gRPC status code, a developer-facing message, and details "
    '(each an object naming its type in "@type", e.g. google.rpc.ErrorInfo or '
    "google.rpc.BadRequest)."
)
_STATUS_FIELD_DESCRIPTIONS = {
    "code": "The status code, a value of google.rpc.Code.",
    "message": "A developer-facing error message in English.",
    "details": "Messages that carry the error details.",
}


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
    builder = _Builder(comments, use_proto_names=use_proto_names)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, str]] = {}
    for route in routes:
        verb = route.http_method.lower()
        if verb not in _OPENAPI_METHODS:
            continue  # a custom HttpRule verb OpenAPI cannot express
        service = route.method.containing_service
        if service.name not in tags:
            tags[service.name] = _tag(service.name, builder.doc(service.full_name))
        path, path_params = _documented_path(route, builder, expand=expand_path_patterns)
        if verb in paths.get(path, {}) and not expand_path_patterns:
            path, path_params = _documented_path(route, builder, expand=True)
        if verb in paths.get(path, {}):
            raise ValueError(
                f"{route.method.full_name}: {route.http_method} {path} is documented twice"
            )
        paths.setdefault(path, {})[verb] = builder.operation(route, path_params)
    builder.ensure_status()
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
    document["components"] = {"schemas": dict(sorted(builder.schemas.items()))}
    return document


def _tag(name: str, comment: str) -> dict[str, str]:
    tag = {"name": name}
    if comment:
        tag["description"] = comment
    return tag


def markdown_of(comment: str) -> str:
    """A proto comment as Markdown: AIP-192 cross references, `[Status][google.rpc.Status]`,
    become code spans of their text (they are no Markdown links)."""
    return _CROSS_REFERENCE.sub(r"`\1`", comment)


def summary_of(comment: str) -> str:
    """The first sentence of a comment's first paragraph, on one line."""
    paragraph = comment.strip().split("\n\n", 1)[0]
    one_line = " ".join(paragraph.split())
    return _SENTENCE_END.split(one_line, maxsplit=1)[0]


def _behaviors(descriptor: FieldDescriptor) -> set[int]:
    options = descriptor.GetOptions()
    return set(options.Extensions[field_behavior_pb2.field_behavior])


def is_required(descriptor: FieldDescriptor) -> bool:
    """Whether the field is annotated `(google.api.field_behavior) = REQUIRED`."""
    return field_behavior_pb2.REQUIRED in _behaviors(descriptor)


def _message_of(descriptor: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    found = descriptor.message_type
    if found is None:
        raise TypeError(f"{descriptor.full_name} is not a message field")
    return found


def _enum_of(descriptor: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field."""
    found = descriptor.enum_type
    if found is None:
        raise TypeError(f"{descriptor.full_name} is not an enum field")
    return found


def _is_map(descriptor: FieldDescriptor) -> bool:
    entry = descriptor.message_type
    return bool(
        descriptor.type in _MESSAGE_TYPES and entry is not None and entry.GetOptions().map_entry
    )


def _is_synthetic_oneof(fields: Sequence[FieldDescriptor], name: str) -> bool:
    """A proto3 `optional` field's oneof: `_name`, holding only that field."""
    return len(fields) == 1 and name == f"_{fields[0].name}"


def _singular(word: str) -> str:
    """A plain English singular of a collection id: workflows, entries, shelves, addresses."""
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if word.endswith("lves"):
        return word[:-3] + "f"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 1:
        return word[:-1]
    return word


def _segment_pattern(pattern: str) -> str:
    """A regular expression for a variable's segments, e.g. `^workflows/[^/]+$`."""
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append("[^/]+(/[^/]+)*")
        elif segment == "*":
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
    return "^" + "/".join(parts) + "$"


def _documented_path(
    route: Route, builder: _Builder, *, expand: bool
) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of a route and its path parameters."""
    if not expand:
        plain = [builder.path_parameter(route, v) for v in route.template.variables]
        return route.template.openapi_path, plain
    variables = iter(route.template.variables)
    params: list[dict[str, Any]] = []
    taken: set[str] = set()

    def unique(name: str) -> str:
        candidate, number = name, 1
        while candidate in taken:
            number += 1
            candidate = f"{name}{number}"
        taken.add(candidate)
        return candidate

    def expand_one(found: re.Match[str]) -> str:
        variable = next(variables)
        segments = variable.pattern.split("/")
        if variable.pattern == "*" or "**" in segments:
            params.append(builder.path_parameter(route, variable))
            taken.add(variable.field_path)
            return f"{{{variable.field_path}}}"
        out = []
        previous = ""
        for segment in segments:
            if segment != "*":
                out.append(segment)
                previous = segment
                continue
            name = unique(_singular(previous) if previous else variable.field_path)
            out.append(f"{{{name}}}")
            params.append(builder.segment_parameter(route, variable, name))
            previous = ""
        return "/".join(out)

    return _VARIABLE.sub(expand_one, route.template.source), params


@dataclass
class _Builder:
    """Collects component schemas while it documents operations."""

    comments: DescriptorComments
    use_proto_names: bool
    schemas: dict[str, Any] = field(default_factory=dict)

    # --- names and descriptions -------------------------------------------------------------

    def name_of(self, descriptor: FieldDescriptor) -> str:
        """The field's name in JSON documents and query strings."""
        return str(descriptor.name if self.use_proto_names else descriptor.json_name)

    def doc(self, full_name: str) -> str:
        """The comment of an element as Markdown (cross references as code spans)."""
        return markdown_of(self.comments.comment(full_name))

    def field_comment(self, descriptor: FieldDescriptor) -> str:
        return self.doc(descriptor.full_name)

    # --- schemas ------------------------------------------------------------------------------

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": _REF + name}

    def enum_ref(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        if descriptor.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        if descriptor.full_name not in self.schemas:
            self.schemas[descriptor.full_name] = self.enum_schema(descriptor)
        return self.ref(descriptor.full_name)

    def enum_schema(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        """A string enum of the value names; the description lists what each one means."""
        schema: dict[str, Any] = {"type": "string", "enum": [v.name for v in descriptor.values]}
        lines = []
        for value in descriptor.values:
            meaning = self.doc(f"{descriptor.full_name}.{value.name}")
            lines.append(f"- `{value.name}`: {' '.join(meaning.split())}" if meaning else "")
        text = self.doc(descriptor.full_name)
        listing = "\n".join(line for line in lines if line)
        if listing:
            text = f"{text}\n\n{listing}" if text else listing
        if text:
            schema["description"] = text
        return schema

    def inline_enum(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        if descriptor.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        return {"type": "string", "enum": [v.name for v in descriptor.values]}

    def message_ref(self, descriptor: Descriptor) -> dict[str, Any]:
        """The schema of a message value: a WKT's JSON form inline, or a $ref."""
        known = _WELL_KNOWN.get(descriptor.full_name)
        if known is not None:
            return copy.deepcopy(dict(known))
        if descriptor.full_name not in self.schemas:
            self.schemas[descriptor.full_name] = {}  # reserved first: messages can recurse
            self.schemas[descriptor.full_name] = self.message_schema(descriptor)
        return self.ref(descriptor.full_name)

    def message_schema(
        self, descriptor: Descriptor, excluded: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The object schema of a message, without the fields at the dotted paths `excluded`
        (the ones a route binds from its path)."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        for child in descriptor.fields:
            if child.name in excluded:
                continue
            prefix = f"{child.name}."
            nested = frozenset(p[len(prefix) :] for p in excluded if p.startswith(prefix))
            name = self.name_of(child)
            properties[name] = self.field_schema(child, nested)
            if is_required(child) and child.containing_oneof is None:
                required.append(name)
        schema: dict[str, Any] = {"type": "object"}
        text = self.doc(descriptor.full_name)
        notes = self.oneof_notes(descriptor, excluded)
        if notes:
            text = "\n\n".join(part for part in (text, notes) if part)
        if text:
            schema["description"] = text
        schema["properties"] = properties
        if required:
            schema["required"] = required
        return schema

    def oneof_notes(self, descriptor: Descriptor, excluded: frozenset[str]) -> str:
        notes = []
        for oneof in descriptor.oneofs:
            members = [f for f in oneof.fields if f.name not in excluded]
            if not members or _is_synthetic_oneof(list(oneof.fields), oneof.name):
                continue
            names = ", ".join(f"`{self.name_of(f)}`" for f in members)
            notes.append(f"At most one of {names} is set (oneof `{oneof.name}`).")
        return "\n".join(notes)

    def value_schema(self, descriptor: FieldDescriptor) -> dict[str, Any]:
        """The schema of one value of a field (one element of a repeated field)."""
        kind = descriptor.type
        if kind in _MESSAGE_TYPES:
            return self.message_ref(_message_of(descriptor))
        if kind == FieldDescriptor.TYPE_ENUM:
            return self.enum_ref(_enum_of(descriptor))
        return scalar_schema(kind)

    def field_schema(
        self, descriptor: FieldDescriptor, excluded: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The schema of a field: its value, an array of them, or a map; with the field's
        description and its readOnly / writeOnly / deprecated marks."""
        if _is_map(descriptor):
            entry = _message_of(descriptor)
            key_field = entry.fields_by_name["key"]
            value_field = entry.fields_by_name["value"]
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self.value_schema(value_field),
            }
            key_pattern = _map_key_pattern(key_field.type)
            if key_pattern:
                schema["propertyNames"] = {"pattern": key_pattern}
        elif excluded and descriptor.type in _MESSAGE_TYPES:
            schema = self.message_schema(_message_of(descriptor), excluded)
        elif descriptor.is_repeated:
            schema = {"type": "array", "items": self.value_schema(descriptor)}
        else:
            schema = self.value_schema(descriptor)
        return self.annotate(schema, descriptor)

    def annotate(self, schema: dict[str, Any], descriptor: FieldDescriptor) -> dict[str, Any]:
        text = self.field_comment(descriptor)
        if text:
            schema["description"] = text
        behaviors = _behaviors(descriptor)
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            schema["writeOnly"] = True
        if descriptor.GetOptions().deprecated:
            schema["deprecated"] = True
        return schema

    def ensure_status(self) -> None:
        """The google.rpc.Status schema, which every error response uses."""
        self.message_ref(status_pb2.Status.DESCRIPTOR)
        status = self.schemas[STATUS_SCHEMA]
        status.setdefault("description", _STATUS_DESCRIPTION)
        for proto_name, text in _STATUS_FIELD_DESCRIPTIONS.items():
            descriptor = status_pb2.Status.DESCRIPTOR.fields_by_name[proto_name]
            status["properties"][self.name_of(descriptor)].setdefault("description", text)

    # --- parameters ---------------------------------------------------------------------------

    def path_parameter(self, route: Route, variable: Variable) -> dict[str, Any]:
        """The parameter of a path variable, named by its field path."""
        chain = _resolve(route.method.input_type, variable.field_path)
        leaf = chain[-1]
        schema = self.parameter_schema(leaf)
        if variable.pattern != "*" and schema.get("type") == "string":
            schema["pattern"] = _segment_pattern(variable.pattern)
        text = self.field_comment(leaf)
        if variable.pattern != "*":
            shape = f"Has the form `{variable.pattern}`."
            text = f"{text}\n\n{shape}" if text else shape
        return _parameter(variable.field_path, "path", schema, text, required=True)

    def segment_parameter(self, route: Route, variable: Variable, name: str) -> dict[str, Any]:
        """One wildcard segment of an expanded path variable."""
        leaf = _resolve(route.method.input_type, variable.field_path)[-1]
        text = f"A segment of `{variable.field_path}` (`{variable.pattern}`)."
        comment = self.field_comment(leaf)
        if comment:
            text = f"{text} {self.name_of(leaf)}: {comment}"
        return _parameter(name, "path", {"type": "string", "pattern": "^[^/]+$"}, text, True)

    def parameter_schema(self, descriptor: FieldDescriptor) -> dict[str, Any]:
        """The inline schema of a non-repeated scalar, enum or scalar WKT value."""
        if descriptor.type in _MESSAGE_TYPES:
            return copy.deepcopy(dict(_WELL_KNOWN[_message_of(descriptor).full_name]))
        if descriptor.type == FieldDescriptor.TYPE_ENUM:
            return self.inline_enum(_enum_of(descriptor))
        return scalar_schema(descriptor.type)

    def query_parameters(self, route: Route) -> list[dict[str, Any]]:
        """Every leaf request field bound neither by the path nor by the body."""
        if route.body == "*":
            return []
        excluded = {v.field_path for v in route.template.variables}
        if route.body:
            excluded.add(route.body)
        out: list[dict[str, Any]] = []
        self._collect_query(
            route.method.input_type,
            excluded,
            out,
            proto_prefix="",
            name_prefix="",
            ancestors_required=True,
            seen=(),
        )
        return out

    def _collect_query(
        self,
        message: Descriptor,
        excluded: set[str],
        out: list[dict[str, Any]],
        *,
        proto_prefix: str,
        name_prefix: str,
        ancestors_required: bool,
        seen: tuple[str, ...],
    ) -> None:
        for child in message.fields:
            proto_path = proto_prefix + child.name
            if proto_path in excluded or _is_map(child):
                continue
            name = name_prefix + self.name_of(child)
            required = ancestors_required and is_required(child)
            is_message = child.type in _MESSAGE_TYPES
            if is_message and _message_of(child).full_name not in _WELL_KNOWN_SCALARS:
                nested = _message_of(child)
                if child.is_repeated or nested.full_name in _WELL_KNOWN:
                    continue  # not expressible as query parameters
                chain = (*seen, message.full_name)
                if nested.full_name in chain:
                    continue  # a recursive message: its fields are documented once
                self._collect_query(
                    nested,
                    excluded,
                    out,
                    proto_prefix=proto_path + ".",
                    name_prefix=name + ".",
                    ancestors_required=required,
                    seen=chain,
                )
                continue
            schema = self.parameter_schema(child)
            if child.is_repeated:
                schema = {"type": "array", "items": schema}
            parameter = _parameter(name, "query", schema, self.field_comment(child), required)
            if child.is_repeated:
                parameter["style"] = "form"
                parameter["explode"] = True
            if child.GetOptions().deprecated:
                parameter["deprecated"] = True
            out.append(parameter)

    # --- operations ---------------------------------------------------------------------------

    def operation(self, route: Route, path_params: list[dict[str, Any]]) -> dict[str, Any]:
        method = route.method
        text = self.doc(method.full_name)
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "tags": [method.containing_service.name],
        }
        if text:
            operation["summary"] = summary_of(text)
            if operation["summary"] != text:  # no repeat of a one-sentence comment
                operation["description"] = text
        parameters = path_params + self.query_parameters(route)
        if parameters:
            operation["parameters"] = parameters
        if route.body:
            operation["requestBody"] = self.request_body(route)
        operation["responses"] = {
            "200": self.success_response(route),
            "default": self.error_response(),
        }
        if method.GetOptions().deprecated:
            operation["deprecated"] = True
        return operation

    def request_body(self, route: Route) -> dict[str, Any]:
        request = route.method.input_type
        bound = frozenset(v.field_path for v in route.template.variables)
        if route.body == "*":
            schema = self.message_schema(request, bound) if bound else self.message_ref(request)
            text = self.doc(request.full_name)
        else:
            body = request.fields_by_name[route.body]
            prefix = f"{route.body}."
            nested = frozenset(p[len(prefix) :] for p in bound if p.startswith(prefix))
            schema = self.field_schema(body, nested)
            text = self.field_comment(body)
        out: dict[str, Any] = {"required": True}
        if text:
            out["description"] = text
        out["content"] = {"application/json": {"schema": schema}}
        return out

    def response_schema(self, route: Route) -> tuple[dict[str, Any], str]:
        response = route.method.output_type
        if route.response_body:
            body = response.fields_by_name[route.response_body]
            return self.field_schema(body), self.field_comment(body)
        return self.message_ref(response), self.doc(response.full_name)

    def success_response(self, route: Route) -> dict[str, Any]:
        schema, text = self.response_schema(route)
        if not route.server_streaming:
            return {
                "description": text or "The response.",
                "content": {"application/json": {"schema": schema}},
            }
        name = f"StreamResult_{route.method.output_type.full_name}"
        if route.response_body:
            name += f".{route.response_body}"
        self.schemas[name] = {
            "type": "object",
            "description": (
                'One line of a newline-delimited JSON stream: `{"result": ...}` for each '
                'message, or a final `{"error": ...}` when the call fails.'
            ),
            "properties": {
                "result": schema,
                "error": self.ref(STATUS_SCHEMA),
            },
            "minProperties": 1,
            "maxProperties": 1,
        }
        framing = (
            "A stream of messages, sent as they come.\n\n"
            "Newline-delimited JSON (`application/json` by default, `application/x-ndjson` "
            'when the request accepts it): one object per line, `{"result": <message>}` for '
            'each message and, when the call fails after it started, a final `{"error": '
            "<google.rpc.Status>}`.\n\n"
            "Server-Sent Events with `Accept: text/event-stream`: `data: <message>` for each "
            "message; a failure ends the stream with `event: error` whose data is the "
            "google.rpc.Status, a success with `event: end`."
        )
        if text:
            framing = f"{text}\n\n{framing}"
        line = {"schema": self.ref(name)}
        return {
            "description": framing,
            "content": {
                "application/json": line,
                "application/x-ndjson": dict(line),
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": "Server-Sent Events: `data: <message JSON>` per message; "
                        "then `event: error` with `data: <google.rpc.Status JSON>` on failure, "
                        "or `event: end` on success.",
                    }
                },
            },
        }

    def error_response(self) -> dict[str, Any]:
        listing = "\n".join(f"- {code}: {why}" for code, why in ERROR_STATUSES.items())
        return {
            "description": f"An error, as a google.rpc.Status. HTTP statuses:\n\n{listing}",
            "content": {"application/json": {"schema": self.ref(STATUS_SCHEMA)}},
        }


def _parameter(
    name: str, where: str, schema: dict[str, Any], text: str, required: bool
) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": where}
    if text:
        parameter["description"] = text
    parameter["required"] = required
    parameter["schema"] = schema
    return parameter


def _resolve(message: Descriptor, path: str) -> list[FieldDescriptor]:
    fields = []
    current: Descriptor | None = message
    for part in path.split("."):
        if current is None:
            raise KeyError(part)
        found = current.fields_by_name[part]
        fields.append(found)
        current = found.message_type
    return fields


_SCALAR_GROUPS: tuple[tuple[tuple[int, ...], Mapping[str, Any]], ...] = (
    (_INT32, {"type": "integer", "format": "int32"}),
    (_UINT32, {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}),
    (_INT64, {"type": "string", "format": "int64", "pattern": _INT64_PATTERN}),
    (_UINT64, {"type": "string", "format": "uint64", "pattern": _UINT64_PATTERN}),
    ((FieldDescriptor.TYPE_DOUBLE,), {"type": "number", "format": "double"}),
    ((FieldDescriptor.TYPE_FLOAT,), {"type": "number", "format": "float"}),
    ((FieldDescriptor.TYPE_BOOL,), {"type": "boolean"}),
    ((FieldDescriptor.TYPE_BYTES,), {"type": "string", "format": "byte"}),
    ((FieldDescriptor.TYPE_STRING,), {"type": "string"}),
)
_SCALARS: Mapping[int, Mapping[str, Any]] = {
    kind: schema for kinds, schema in _SCALAR_GROUPS for kind in kinds
}


def scalar_schema(kind: int) -> dict[str, Any]:
    """The JSON schema of a scalar proto type (FieldDescriptor.TYPE_*), per the JSON mapping."""
    return dict(_SCALARS[kind])


def _map_key_pattern(kind: int) -> str:
    if kind in (*_INT32, *_INT64):
        return _INT64_PATTERN
    if kind in (*_UINT32, *_UINT64):
        return _UINT64_PATTERN
    if kind == FieldDescriptor.TYPE_BOOL:
        return "^(true|false)$"
    return ""
