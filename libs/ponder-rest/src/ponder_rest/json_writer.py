"""proto3 JSON of messages, several times faster than protobuf's pure-Python `json_format`.

The output is exactly `json_format.MessageToDict`'s (a test compares them on random messages of
every type the gateway serves): the per-type work — JSON names, enum names, which fields are
printed at their default — is planned once per message type, and each message then costs one
`ListFields()` walk plus the defaults. Well-known types keep json_format's own conversion,
except Timestamp and Duration, written here (their digits exactly as json_format spells them).
A caller may stand in for the conversion of single sub-message fields (`SubMessages`: e.g. a
memo of their JSON).
"""

from __future__ import annotations

import base64
import datetime
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

from ponder_rest.codec import JsonOptions, message_to_obj
from ponder_rest.wkt import Form, form_of


Convert = Callable[[Any], Any]
# Given a single (not repeated), not well-known sub-message field and its plain conversion:
# the conversion to use for it instead.
SubMessages = Callable[[FieldDescriptor, Convert], Convert]
_F = FieldDescriptor


class JsonWriter:
    """MessageToDict with planned conversions (see module docstring)."""

    def __init__(self, options: JsonOptions, *, sub_messages: SubMessages | None = None) -> None:
        self._options = options
        self._plans: dict[str, _Plan] = {}
        self._sub_messages = sub_messages
        self._times = _Times()

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
            js[name] = value if convert is None else convert(value)
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
        converters: dict[int, tuple[str, Convert | None]] = {}
        defaults: list[tuple[str, Callable[[], Any]]] = []
        for field in descriptor.fields:
            name = field.name if self._options.use_proto_names else field.json_name
            convert = self._field_converter(field)
            converters[field.number] = (name, None if convert is _same else convert)
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
            if one is _same:
                return list
            return lambda value: [one(item) for item in value]
        plain_message = entry is not None and form_of(entry.full_name) is None
        if self._sub_messages is not None and plain_message:
            return self._sub_messages(field, one)
        return one

    def _value_converter(self, field: FieldDescriptor) -> Convert:
        cpp = field.cpp_type
        if cpp == _F.CPPTYPE_MESSAGE:
            return self._message_converter(field.message_type)
        if cpp == _F.CPPTYPE_ENUM:
            return _enum_converter(field)
        if cpp == _F.CPPTYPE_STRING:
            return _base64 if field.type == _F.TYPE_BYTES else _same  # already a str
        return _SCALARS.get(cpp, _same)

    def _message_converter(self, message: Any) -> Convert:
        if message.full_name == "google.protobuf.Timestamp":
            return self._times.timestamp
        if message.full_name == "google.protobuf.Duration":
            return self._times.duration
        form = form_of(message.full_name)
        if form is Form.STRING:  # json_format's conversion, directly
            return _json_string
        if form is Form.WRAPPER:
            inner = self._value_converter(message.fields_by_name["value"])
            return lambda value: inner(value.value)
        return self.to_obj

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
        converters: dict[int, tuple[str, Convert | None]] | None = None,
        defaults: list[tuple[str, Callable[[], Any]]] | None = None,
        delegate: bool = False,
    ) -> None:
        self.converters = converters or {}
        self.defaults = defaults or []
        self.delegate = delegate


_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)  # 0001-01-01 to 9999-12-31
_DURATION_SECONDS = 315_576_000_000
_NANOS = 1_000_000_000


class _Times:
    """Timestamp and Duration JSON, as protobuf's `ToJsonString` writes them (3, 6 or 9
    fractional digits, as few as are exact) without its datetime arithmetic; the date of each
    recent day kept, and the text of the last second. Invalid values go to `ToJsonString`,
    which refuses them (ValueError, as before)."""

    __slots__ = ("_days", "_second", "_second_text")

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._second = 0
        self._second_text = "1970-01-01T00:00:00"

    def timestamp(self, value: Any) -> str:
        """RFC 3339 in UTC, "Z"-terminated."""
        seconds, nanos = value.seconds, value.nanos
        if not (_TIMESTAMP_SECONDS[0] <= seconds <= _TIMESTAMP_SECONDS[1] and 0 <= nanos < _NANOS):
            return _json_string(value)
        if seconds == self._second:
            text = self._second_text
        else:
            text = self._second_text = self._text(seconds)
            self._second = seconds
        return f"{text}{_fraction(nanos)}Z" if nanos else f"{text}Z"

    def _text(self, seconds: int) -> str:
        """The date and time of `seconds` since the epoch, e.g. "2024-05-01T12:30:00"."""
        days, second = divmod(seconds, _SECONDS_PER_DAY)
        date = self._days.get(days)
        if date is None:
            if len(self._days) >= 1024:
                self._days.clear()
            date = self._days[days] = datetime.date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
        minutes, second = divmod(second, 60)
        hour, minute = divmod(minutes, 60)
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}"

    @staticmethod
    def duration(value: Any) -> str:
        """Seconds with an "s", e.g. "1.500s", "-0.000000001s"."""
        seconds, nanos = value.seconds, value.nanos
        if (
            not -_DURATION_SECONDS <= seconds <= _DURATION_SECONDS
            or not -_NANOS < nanos < _NANOS
            or (nanos < 0 < seconds)
            or (seconds < 0 < nanos)
        ):
            return _json_string(value)
        if seconds < 0 or nanos < 0:
            return f"-{-seconds}{_fraction(-nanos)}s"
        return f"{seconds}{_fraction(nanos)}s"


def _fraction(nanos: int) -> str:
    """The fractional seconds of `nanos` (0 to 999,999,999): none, or 3, 6 or 9 digits."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


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
