"""proto3 JSON of messages, several times faster than protobuf's pure-Python `json_format`.

The output is exactly `json_format.MessageToDict`'s (a test compares them on random messages of
every type the gateway serves): the per-type work — JSON names, enum names, which fields are
printed at their default — is planned once per message type, and each message then costs one
`ListFields()` walk plus the defaults. Well-known types keep json_format's own conversion.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

from ponder_rest.codec import JsonOptions, message_to_obj
from ponder_rest.wkt import Form, form_of


Convert = Callable[[Any], Any]
_F = FieldDescriptor


class JsonWriter:
    """MessageToDict with planned conversions (see module docstring)."""

    def __init__(self, options: JsonOptions) -> None:
        self._options = options
        self._plans: dict[str, _Plan] = {}

    def to_obj(self, message: Message) -> Any:
        """The proto3 JSON object of `message`."""
        descriptor = message.DESCRIPTOR
        plan = self._plans.get(descriptor.full_name)
        if plan is None:
            plan = self._plans[descriptor.full_name] = self._plan(descriptor)
        if plan.delegate:
            return message_to_obj(message, self._options)
        js: dict[str, Any] = {}
        converters = plan.converters
        for field, value in message.ListFields():
            name, convert = converters[field.number]
            js[name] = convert(value)
        for name, make_default in plan.defaults:
            if name not in js:
                js[name] = make_default()
        return js

    def _plan(self, descriptor: Any) -> _Plan:
        if (
            descriptor.full_name.startswith("google.protobuf.")
            or descriptor.GetOptions().map_entry
            or descriptor.extension_ranges
            or any(_special_enum(f) for f in descriptor.fields)
        ):
            return _Plan(delegate=True)  # json_format's own rules
        converters: dict[int, tuple[str, Convert]] = {}
        defaults: list[tuple[str, Callable[[], Any]]] = []
        for field in descriptor.fields:
            name = field.name if self._options.use_proto_names else field.json_name
            converters[field.number] = (name, self._field_converter(field))
            if self._options.emit_unpopulated and not field.has_presence:
                defaults.append((name, self._default(field)))
        return _Plan(converters=converters, defaults=defaults)

    def _field_converter(self, field: FieldDescriptor) -> Convert:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_convert = self._value_converter(entry.fields_by_name["value"])

            def convert_map(value: Any) -> Any:
                return {_map_key(k): value_convert(v) for k, v in value.items()}

            return convert_map
        one = self._value_converter(field)
        if field.is_repeated:
            return lambda value: [one(item) for item in value]
        return one

    def _value_converter(self, field: FieldDescriptor) -> Convert:
        cpp = field.cpp_type
        if cpp == _F.CPPTYPE_MESSAGE:
            message: Any = field.message_type
            form = form_of(message.full_name)
            if form is Form.STRING:  # json_format's conversion, directly
                return _json_string
            if form is Form.WRAPPER:
                inner = self._value_converter(message.fields_by_name["value"])
                return lambda value: inner(value.value)
            return self.to_obj
        if cpp == _F.CPPTYPE_ENUM:
            return _enum_converter(field)
        if cpp == _F.CPPTYPE_STRING:
            return _base64 if field.type == _F.TYPE_BYTES else str
        return _SCALARS.get(cpp, _same)

    def _default(self, field: FieldDescriptor) -> Callable[[], Any]:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            return dict
        if field.is_repeated:
            return list
        value = self._value_converter(field)(field.default_value)
        return lambda: value


class _Plan:
    """How to write one message type."""

    __slots__ = ("converters", "defaults", "delegate")

    def __init__(
        self,
        *,
        converters: dict[int, tuple[str, Convert]] | None = None,
        defaults: list[tuple[str, Callable[[], Any]]] | None = None,
        delegate: bool = False,
    ) -> None:
        self.converters = converters or {}
        self.defaults = defaults or []
        self.delegate = delegate


def _json_string(value: Any) -> str:
    text: str = value.ToJsonString()
    return text


def _same(value: Any) -> Any:
    return value


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _special(value: float) -> str | None:
    if math.isinf(value):
        return "-Infinity" if value < 0.0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return None


def _float32(value: float) -> Any:
    special = _special(value)
    return special if special is not None else type_checkers.ToShortestFloat(value)


def _double(value: float) -> Any:
    special = _special(value)
    return special if special is not None else value


_SCALARS: dict[int, Convert] = {
    _F.CPPTYPE_BOOL: bool,
    _F.CPPTYPE_INT64: str,
    _F.CPPTYPE_UINT64: str,
    _F.CPPTYPE_FLOAT: _float32,
    _F.CPPTYPE_DOUBLE: _double,
}


def _special_enum(field: FieldDescriptor) -> bool:
    """A closed enum, or one with custom JSON names: left to json_format."""
    enum = field.enum_type
    if enum is None:
        return False
    return bool(enum.is_closed or any(v.GetOptions().ListFields() for v in enum.values))


def _enum_converter(field: FieldDescriptor) -> Convert:
    enum = field.enum_type
    assert enum is not None
    if enum.full_name == "google.protobuf.NullValue":
        return lambda _: None
    names = {v.number: v.name for v in enum.values}
    return lambda value: names.get(value, value)
