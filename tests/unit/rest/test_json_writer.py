"""JsonWriter writes exactly what json_format.MessageToDict writes, on random messages of every
type the gateway serves and of the test-only transcoding proto."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from ponder.embedding.v1 import embedding_service_pb2
from ponder.reflection.v1 import reflection_service_pb2
from ponder.research.v1 import research_service_pb2
from ponder.workflow.v1 import workflow_service_pb2
from ponder_rest.codec import JsonOptions
from ponder_rest.json_writer import JsonWriter
from ponder_testing.transcoding.v1 import transcoding_pb2


F = FieldDescriptor
MODULES = [
    workflow_service_pb2,
    research_service_pb2,
    reflection_service_pb2,
    embedding_service_pb2,
    transcoding_pb2,
]
FLOATS = [0.0, -0.0, 1.5, -2.25, 1e-7, 3.4e38, 0.1, float("inf"), float("-inf"), float("nan")]
STRINGS = ["", "a", "ünïcode ✓", 'quote " and \\ backslash', "x" * 50]
# Whole seconds, and 3, 6 and 9 fractional digits.
NANOS = [0, 0, 5_000_000, 120_000, 999_999_999, 1, 123_456_789, 900_000_000]


def message_classes() -> list[type[Message]]:
    """Every top-level message class of the modules."""
    found = []
    for module in MODULES:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            found.append(getattr(module, descriptor.name))
    return found


def scalar(field: Any, rng: random.Random) -> Any:
    """A random value for a scalar or enum field, edge cases included."""
    kind = field.cpp_type
    if kind == F.CPPTYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return rng.choice([*numbers, 99]) if not field.enum_type.is_closed else rng.choice(numbers)
    if kind == F.CPPTYPE_STRING:
        if field.type == F.TYPE_BYTES:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(6)))
        return rng.choice(STRINGS)
    if kind == F.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if kind in (F.CPPTYPE_FLOAT, F.CPPTYPE_DOUBLE):
        return rng.choice(FLOATS)
    bounds = {
        F.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
        F.CPPTYPE_UINT32: (0, 2**32 - 1),
        F.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
        F.CPPTYPE_UINT64: (0, 2**64 - 1),
    }[kind]
    return rng.choice([0, 1, -1 if bounds[0] < 0 else 2, *bounds, rng.randint(*bounds)])


def fill(message: Message, rng: random.Random, depth: int = 0) -> Message:
    """Set a random subset of `message`'s fields (recursively, a few levels deep)."""
    for field in message.DESCRIPTOR.fields:
        if rng.random() < 0.4 or (field.message_type is not None and depth > 3):
            continue
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            fill_map(getattr(message, field.name), entry, rng, depth)
        elif field.is_repeated:
            for _ in range(rng.randrange(3)):
                add_item(getattr(message, field.name), field, rng, depth)
        elif entry is not None:
            fill_one(getattr(message, field.name), rng, depth)
        else:
            setattr(message, field.name, scalar(field, rng))
    return message


def fill_map(target: Any, entry: Any, rng: random.Random, depth: int) -> None:
    """A few random entries of a map field."""
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for _ in range(rng.randrange(3)):
        key = scalar(key_field, rng)
        if value_field.message_type is not None:
            fill(target[key], rng, depth + 1)
        else:
            target[key] = scalar(value_field, rng)


def add_item(target: Any, field: Any, rng: random.Random, depth: int) -> None:
    """Append one random item to a repeated field."""
    if field.message_type is None:
        target.append(scalar(field, rng))
    else:
        fill_one(target.add(), rng, depth)


def fill_one(target: Any, rng: random.Random, depth: int) -> None:
    """A random value for a message (well-known types get valid values)."""
    kind = target.DESCRIPTOR.full_name
    if kind == "google.protobuf.Timestamp":
        target.FromSeconds(rng.randrange(0, 4_000_000_000))
        target.nanos = rng.choice(NANOS)
    elif kind == "google.protobuf.Duration":
        target.FromNanoseconds(rng.choice([-1, 1]) * rng.randrange(10**12) + rng.choice(NANOS))
    elif kind == "google.protobuf.Any":
        target.Pack(error_details_pb2.ErrorInfo(reason=rng.choice(STRINGS)))
    else:
        fill(target, rng, depth + 1)
        target.SetInParent()


@pytest.mark.parametrize(
    "options",
    [JsonOptions(), JsonOptions(use_proto_names=True), JsonOptions(emit_unpopulated=False)],
    ids=["camel-emit", "proto-names", "omit-defaults"],
)
@pytest.mark.parametrize("cls", message_classes(), ids=lambda c: c.DESCRIPTOR.full_name)
def test_same_as_json_format(cls: type[Message], options: JsonOptions):
    writer = JsonWriter(options)
    rng = random.Random(cls.DESCRIPTOR.full_name)
    for _ in range(25):
        message = fill(cls(), rng)
        expected = json_format.MessageToDict(
            message,
            preserving_proto_field_name=options.use_proto_names,
            always_print_fields_with_no_presence=options.emit_unpopulated,
        )
        got = writer.to_obj(message)
        assert repr(got) == repr(expected)  # NaN != NaN: compare the printed forms


@pytest.mark.parametrize(
    "seconds",
    [-62_135_596_800, -86_401, -1, 0, 59, 951_782_400, 1_764_921_599, 253_402_300_799],
)
def test_times_as_json_format(seconds: int):
    """Timestamps and Durations from year 1 to 9999, each precision and sign, as json_format."""
    writer = JsonWriter(JsonOptions(emit_unpopulated=False))
    for nanos in NANOS:
        message = workflow_service_pb2.Workflow()
        message.create_time.seconds, message.create_time.nanos = seconds, nanos
        message.update_time.seconds, message.update_time.nanos = seconds // 2, nanos
        stamp = abs(seconds) % 315_576_000_000
        message.execution_time.seconds = stamp if seconds >= 0 else -stamp
        message.execution_time.nanos = -nanos if seconds < 0 or stamp == 0 else nanos
        assert writer.to_obj(message) == json_format.MessageToDict(message)


def test_invalid_times_raise():
    """A Timestamp or Duration out of range is refused, as protobuf refuses it."""
    writer = JsonWriter(JsonOptions())
    message = workflow_service_pb2.Workflow()
    message.create_time.seconds = 253_402_300_800
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        writer.to_obj(message)
    message = workflow_service_pb2.Workflow()
    message.execution_time.seconds, message.execution_time.nanos = 1, -1
    with pytest.raises(ValueError, match="Sign mismatch"):
        writer.to_obj(message)
