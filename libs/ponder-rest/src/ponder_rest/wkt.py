"""The well-known types: one table of their proto3 JSON forms and schemas, for the whole library."""

import enum
from collections.abc import Mapping
from typing import Any, NamedTuple


class Form(enum.Enum):
    """The JSON form of a well-known type: it decides how each part of the library treats it."""

    WRAPPER = "the wrapped scalar"
    STRING = "a string: Timestamp RFC 3339, Duration in seconds, FieldMask a comma list"
    JSON = "any JSON value (Struct an object, ListValue an array)"
    ANY = 'the packed message\'s JSON plus an "@type"'
    EMPTY = "an empty object, as a plain message"


class WellKnown(NamedTuple):
    """A well-known type: its JSON form and the JSON Schema that documents it."""

    form: Form
    schema: Mapping[str, Any]


INT64_PATTERN = "^-?[0-9]+$"
UINT64_PATTERN = "^[0-9]+$"

WELL_KNOWN: Mapping[str, WellKnown] = {
    "google.protobuf.Timestamp": WellKnown(
        Form.STRING,
        {"type": "string", "format": "date-time", "examples": ["2024-05-01T12:30:00.5Z"]},
    ),
    "google.protobuf.Duration": WellKnown(
        Form.STRING,
        {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$", "examples": ["1.5s"]},
    ),
    "google.protobuf.FieldMask": WellKnown(
        Form.STRING,
        {
            "type": "string",
            "description": "Comma-separated lowerCamelCase field paths.",
            "examples": ["displayName,parameters.maxSources"],
        },
    ),
    "google.protobuf.DoubleValue": WellKnown(Form.WRAPPER, {"type": "number", "format": "double"}),
    "google.protobuf.FloatValue": WellKnown(Form.WRAPPER, {"type": "number", "format": "float"}),
    "google.protobuf.Int64Value": WellKnown(
        Form.WRAPPER, {"type": "string", "format": "int64", "pattern": INT64_PATTERN}
    ),
    "google.protobuf.UInt64Value": WellKnown(
        Form.WRAPPER, {"type": "string", "format": "uint64", "pattern": UINT64_PATTERN}
    ),
    "google.protobuf.Int32Value": WellKnown(Form.WRAPPER, {"type": "integer", "format": "int32"}),
    "google.protobuf.UInt32Value": WellKnown(
        Form.WRAPPER, {"type": "integer", "format": "int64", "minimum": 0}
    ),
    "google.protobuf.BoolValue": WellKnown(Form.WRAPPER, {"type": "boolean"}),
    "google.protobuf.StringValue": WellKnown(Form.WRAPPER, {"type": "string"}),
    "google.protobuf.BytesValue": WellKnown(Form.WRAPPER, {"type": "string", "format": "byte"}),
    "google.protobuf.Struct": WellKnown(
        Form.JSON, {"type": "object", "additionalProperties": True}
    ),
    "google.protobuf.Value": WellKnown(Form.JSON, {"description": "Any JSON value."}),
    "google.protobuf.ListValue": WellKnown(Form.JSON, {"type": "array", "items": {}}),
    "google.protobuf.Empty": WellKnown(Form.EMPTY, {"type": "object"}),
    "google.protobuf.Any": WellKnown(
        Form.ANY,
        {
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
        },
    ),
}


def form_of(full_name: str) -> Form | None:
    """The JSON form of the message type `full_name`; None when it is no well-known type."""
    known = WELL_KNOWN.get(full_name)
    return known.form if known is not None else None
