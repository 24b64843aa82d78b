"""JSON Schemas of messages, enums, well-known types and scalars, collected as components."""

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import status_pb2

from ponder_rest.comments import DescriptorComments
from ponder_rest.openapi.text import markdown_of
from ponder_rest.wkt import INT64_PATTERN, UINT64_PATTERN, WELL_KNOWN


STATUS_SCHEMA = "google.rpc.Status"
MESSAGE_TYPES = (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)
_REF = "#/components/schemas/"
_INT32 = (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32)
_UINT32 = (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32)
_INT64 = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64)
_UINT64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)

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


@dataclass
class Schemas:
    """Collects component schemas while the operations are documented."""

    comments: DescriptorComments
    use_proto_names: bool
    components: dict[str, Any] = field(default_factory=dict)

    def name_of(self, descriptor: FieldDescriptor) -> str:
        """The field's name in JSON documents and query strings."""
        return str(descriptor.name if self.use_proto_names else descriptor.json_name)

    def doc(self, full_name: str) -> str:
        """The comment of an element as Markdown (cross references as code spans)."""
        return markdown_of(self.comments.comment(full_name))

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": _REF + name}

    def enum_ref(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        if descriptor.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = self.enum_schema(descriptor)
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
        known = WELL_KNOWN.get(descriptor.full_name)
        if known is not None:
            return copy.deepcopy(dict(known.schema))
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # reserved first: messages can recurse
            self.components[descriptor.full_name] = self.message_schema(descriptor)
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
        if kind in MESSAGE_TYPES:
            return self.message_ref(message_of(descriptor))
        if kind == FieldDescriptor.TYPE_ENUM:
            return self.enum_ref(enum_of(descriptor))
        return scalar_schema(kind)

    def field_schema(
        self, descriptor: FieldDescriptor, excluded: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The schema of a field: its value, an array of them, or a map; with the field's
        description and its readOnly / writeOnly / deprecated marks."""
        if is_map(descriptor):
            entry = message_of(descriptor)
            key_field = entry.fields_by_name["key"]
            value_field = entry.fields_by_name["value"]
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self.value_schema(value_field),
            }
            key_pattern = _map_key_pattern(key_field.type)
            if key_pattern:
                schema["propertyNames"] = {"pattern": key_pattern}
        elif excluded and descriptor.type in MESSAGE_TYPES:
            schema = self.message_schema(message_of(descriptor), excluded)
        elif descriptor.is_repeated:
            schema = {"type": "array", "items": self.value_schema(descriptor)}
        else:
            schema = self.value_schema(descriptor)
        return self.annotate(schema, descriptor)

    def annotate(self, schema: dict[str, Any], descriptor: FieldDescriptor) -> dict[str, Any]:
        text = self.doc(descriptor.full_name)
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
        status = self.components[STATUS_SCHEMA]
        status.setdefault("description", _STATUS_DESCRIPTION)
        for proto_name, text in _STATUS_FIELD_DESCRIPTIONS.items():
            descriptor = status_pb2.Status.DESCRIPTOR.fields_by_name[proto_name]
            status["properties"][self.name_of(descriptor)].setdefault("description", text)


def _behaviors(descriptor: FieldDescriptor) -> set[int]:
    options = descriptor.GetOptions()
    return set(options.Extensions[field_behavior_pb2.field_behavior])


def is_required(descriptor: FieldDescriptor) -> bool:
    """Whether the field is annotated `(google.api.field_behavior) = REQUIRED`."""
    return field_behavior_pb2.REQUIRED in _behaviors(descriptor)


def message_of(descriptor: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    found = descriptor.message_type
    if found is None:
        raise TypeError(f"{descriptor.full_name} is not a message field")
    return found


def enum_of(descriptor: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field."""
    found = descriptor.enum_type
    if found is None:
        raise TypeError(f"{descriptor.full_name} is not an enum field")
    return found


def is_map(descriptor: FieldDescriptor) -> bool:
    entry = descriptor.message_type
    return bool(entry is not None and entry.GetOptions().map_entry)


def _is_synthetic_oneof(fields: Sequence[FieldDescriptor], name: str) -> bool:
    """A proto3 `optional` field's oneof: `_name`, holding only that field."""
    return len(fields) == 1 and name == f"_{fields[0].name}"


_SCALAR_GROUPS: tuple[tuple[tuple[int, ...], Mapping[str, Any]], ...] = (
    (_INT32, {"type": "integer", "format": "int32"}),
    (_UINT32, {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}),
    (_INT64, {"type": "string", "format": "int64", "pattern": INT64_PATTERN}),
    (_UINT64, {"type": "string", "format": "uint64", "pattern": UINT64_PATTERN}),
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
        return INT64_PATTERN
    if kind in (*_UINT32, *_UINT64):
        return UINT64_PATTERN
    if kind == FieldDescriptor.TYPE_BOOL:
        return "^(true|false)$"
    return ""
