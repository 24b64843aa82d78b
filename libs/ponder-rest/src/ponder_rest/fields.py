"""Set request fields from the strings of a path or a query: scalars, enums, repeated fields,
nested fields by dotted path, and the well-known types grpc-gateway accepts there
(Timestamp RFC 3339, Duration "1.5s" or "1m30s", wrappers, FieldMask as a comma list,
Struct/Value as JSON text)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ponder_rest.wkt import Form, form_of


class FieldValueError(ValueError):
    """A value that does not fit its field (the message says why)."""


class FieldPathError(FieldValueError):
    """A dotted path whose `part` names no field, or (`repeated`) a repeated field it crosses."""

    def __init__(self, message: str, part: str, *, repeated: bool = False) -> None:
        super().__init__(message)
        self.part = part
        self.repeated = repeated


T = FieldDescriptor
_INT_RANGES = {
    T.TYPE_INT32: (-(2**31), 2**31 - 1),
    T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    T.TYPE_UINT32: (0, 2**32 - 1),
    T.TYPE_FIXED32: (0, 2**32 - 1),
    T.TYPE_INT64: (-(2**63), 2**63 - 1),
    T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    T.TYPE_UINT64: (0, 2**64 - 1),
    T.TYPE_FIXED64: (0, 2**64 - 1),
}
_GO_DURATION = re.compile(r"(-?)((?:\d+(?:\.\d*)?|\.\d+)(?:h|m|s|ms|us|µs|ns))+")
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_UPPER = re.compile(r"[A-Z]")


def _integer(descriptor: FieldDescriptor, text: str) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise FieldValueError(f"{text!r} is not an integer") from None
    low, high = _INT_RANGES[descriptor.type]
    if not low <= value <= high:
        raise FieldValueError(f"{value} is out of range [{low}, {high}]")
    return value


def _float(_: FieldDescriptor, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise FieldValueError(f"{text!r} is not a number") from None
    if math.isnan(value) and text.strip() not in ("NaN", "nan"):
        raise FieldValueError(f"{text!r} is not a number")
    return value


def _bool(_: FieldDescriptor, text: str) -> bool:
    try:
        return _BOOLS[text.strip().lower()]
    except KeyError:
        raise FieldValueError(f"{text!r} is not a boolean (true or false)") from None


def _bytes(_: FieldDescriptor, text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise FieldValueError(f"{text!r} is not base64") from None


def _enum(descriptor: FieldDescriptor, text: str) -> int:
    enum = descriptor.enum_type
    assert enum is not None
    found = enum.values_by_name.get(text.strip())
    if found is not None:
        return int(found.number)
    try:
        number = int(text.strip())
    except ValueError:
        names = ", ".join(v.name for v in enum.values)
        raise FieldValueError(f"{text!r} is not one of {names}") from None
    if number not in enum.values_by_number:
        raise FieldValueError(f"{number} is not a value of {enum.full_name}")
    return number


def _string(_: FieldDescriptor, text: str) -> str:
    return text


_SCALARS: dict[int, Callable[[FieldDescriptor, str], Any]] = {
    **dict.fromkeys(_INT_RANGES, _integer),
    T.TYPE_DOUBLE: _float,
    T.TYPE_FLOAT: _float,
    T.TYPE_BOOL: _bool,
    T.TYPE_BYTES: _bytes,
    T.TYPE_ENUM: _enum,
    T.TYPE_STRING: _string,
}


def go_duration_to_json(text: str) -> str:
    """A Go duration ("1m30s", "250ms") as proto JSON ("90s", "0.25s"); other text unchanged."""
    if not _GO_DURATION.fullmatch(text) or (text.endswith("s") and _is_json_duration(text)):
        return text
    sign = -1.0 if text.startswith("-") else 1.0
    seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(text))
    return f"{sign * seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _is_json_duration(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d{1,9})?s", text) is not None


def _snake_path(path: str) -> str:
    """A FieldMask path in proto names: its JSON form ("book.pageCount", as the body takes it
    and the OpenAPI document shows it) or proto names ("book.page_count") as they are."""
    return _UPPER.sub(lambda found: "_" + found.group().lower(), path)


def _set_well_known(message: Message, text: str) -> None:
    name = message.DESCRIPTOR.full_name
    form = form_of(name)
    try:
        if name == "google.protobuf.Timestamp":
            message.FromJsonString(text)  # type: ignore[attr-defined]
        elif name == "google.protobuf.Duration":
            message.FromJsonString(go_duration_to_json(text.strip()))  # type: ignore[attr-defined]
        elif name == "google.protobuf.FieldMask":
            paths = (_snake_path(p.strip()) for p in text.split(",") if p.strip())
            message.paths.extend(paths)  # type: ignore[attr-defined]
        elif form is Form.WRAPPER:
            inner: Any = message.DESCRIPTOR.fields_by_name["value"]
            message.value = _SCALARS[inner.type](inner, text)  # type: ignore[attr-defined]
        elif form is Form.JSON:
            json_format.ParseDict(json.loads(text), message)
        else:
            raise FieldValueError(f"a {name} cannot be set from a query parameter")
    except (ValueError, json_format.ParseError) as exc:
        if isinstance(exc, FieldValueError):
            raise
        raise FieldValueError(f"{text!r} is not a valid {name}: {exc}") from None


def is_leaf_message(descriptor: Descriptor) -> bool:
    """Well-known types a single query value can set."""
    return form_of(descriptor.full_name) in (Form.WRAPPER, Form.STRING, Form.JSON)


@lru_cache(maxsize=4096)
def _field_named(descriptor: Descriptor, name: str, json_names: bool) -> FieldDescriptor | None:
    """A field by proto name, or else (with `json_names`) by JSON name."""
    found = descriptor.fields_by_name.get(name)
    if found is not None or not json_names:
        return found
    return next((f for f in descriptor.fields if f.json_name == name), None)


def resolve(descriptor: Any, dotted: str, *, json_names: bool = True) -> list[FieldDescriptor]:
    """The fields along `dotted`, by proto names (and JSON names unless `json_names` is False);
    the one field-path resolver of the library. Raises FieldPathError."""
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in dotted.split("."):
        found = _field_named(current, part, json_names) if current is not None else None
        if found is None:
            raise FieldPathError("no such field", part)
        if chain and chain[-1].is_repeated:
            parent = chain[-1].name
            raise FieldPathError(
                f"{parent!r} is repeated and cannot hold a field", parent, repeated=True
            )
        chain.append(found)
        current = found.message_type
    return chain


def canonical_path(chain: list[FieldDescriptor]) -> str:
    """The proto-name path of a field chain ("workflow.parameters.max_sources")."""
    return ".".join(f.name for f in chain)


def set_values(message: Message, chain: list[FieldDescriptor], values: list[str]) -> None:
    """Set (or, for a repeated field, append) `values` at the end of `chain` in `message`."""
    target = message
    for step in chain[:-1]:
        target = getattr(target, step.name)
    leaf = chain[-1]
    if leaf.message_type is not None and leaf.message_type.GetOptions().map_entry:
        raise FieldValueError("map fields cannot be set from a query parameter")
    if not leaf.is_repeated and len(values) > 1:
        raise FieldValueError("given more than once, but the field is not repeated")
    if leaf.message_type is not None:
        if not is_leaf_message(leaf.message_type):
            raise FieldValueError("a message field: set its fields with dotted names")
        if leaf.is_repeated:
            for value in values:
                _set_well_known(getattr(target, leaf.name).add(), value)
        else:
            _set_well_known(getattr(target, leaf.name), values[0])
        return
    convert = _SCALARS[leaf.type]
    converted = [convert(leaf, v) for v in values]
    if leaf.is_repeated:
        getattr(target, leaf.name).extend(converted)
    else:
        setattr(target, leaf.name, converted[0])
