"""Proto3 JSON in and out: options, compact dumps, body parsing with errors that say where."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ponder_rest.wkt import Form, form_of


@dataclass(frozen=True, slots=True)
class JsonOptions:
    """How messages are written: JSON (lowerCamelCase) or proto field names, and whether
    unpopulated fields are emitted (grpc-gateway v2's default, so clients see zeros)."""

    use_proto_names: bool = False
    emit_unpopulated: bool = True


def message_to_obj(message: Message, options: JsonOptions) -> Any:
    """The proto3 JSON form of `message` as Python objects."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=options.use_proto_names,
        always_print_fields_with_no_presence=options.emit_unpopulated,
    )


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (orjson: what json.dumps with ensure_ascii=False and no spaces
    writes, several times faster; a float may be spelt differently, e.g. 1e-7 for 1e-07)."""
    return orjson.dumps(obj)


class BodyError(ValueError):
    """A request body that is not JSON, or not JSON of the request message."""


def loads(raw: bytes) -> Any:
    """Parse a JSON body; the error says where it broke."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BodyError(
            f"malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}"
        ) from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise BodyError("the JSON is nested too deeply") from None


def parse_into(obj: Any, message: Message) -> None:
    """Merge a JSON object into `message` (JSON or proto names; unknown fields rejected)."""
    _refuse_misfits(obj, message.DESCRIPTOR)
    try:
        json_format.ParseDict(obj, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        text = str(exc).split("\n", 1)[0].replace("Failed to parse", "cannot parse")
        raise BodyError(text) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise BodyError(f"the body does not fit {message.DESCRIPTOR.full_name}: {exc}") from None
    except RecursionError:
        raise BodyError("the JSON is nested too deeply") from None


_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def _refuse_misfits(obj: Any, descriptor: Any) -> None:
    """Refuse what protobuf's Python parser lets through but the proto3 JSON mapping and
    grpc-gateway reject: true/false for a float or double (read as 1.0/0.0, a bool being an
    int), and [] or "" for a message field (read as an empty message)."""
    if not isinstance(obj, dict):
        return  # json_format says what is wrong with it
    for key, value in obj.items():
        found = descriptor.fields_by_name.get(key) or next(
            (f for f in descriptor.fields if f.json_name == key), None
        )
        if found is None or value is None:
            continue
        entry = found.message_type
        if entry is not None and entry.GetOptions().map_entry:
            found = entry.fields_by_name["value"]
            values = list(value.values()) if isinstance(value, dict) else []
        else:
            values = value if found.is_repeated and isinstance(value, list) else [value]
        kind = found.message_type
        form = form_of(kind.full_name) if kind is not None else None
        value_type = kind.fields_by_name["value"].type if form is Form.WRAPPER else found.type
        floating = value_type in _FLOATS
        plain = kind is not None and form in (None, Form.EMPTY)  # json_format checks the rest
        for item in values:
            if floating and isinstance(item, bool):
                raise BodyError(f"cannot parse {key} field: {str(item).lower()} is not a number")
            if plain and item is not None:
                if not isinstance(item, dict):
                    raise BodyError(
                        f"cannot parse {key} field: expected a JSON object, "
                        f"got {type(item).__name__}"
                    )
                _refuse_misfits(item, kind)
