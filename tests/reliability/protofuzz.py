"""Hypothesis strategies built from protobuf descriptors, and helpers to check gRPC errors.

`messages(descriptor)` draws instances of any message type: scalars with their edge values,
enums with numbers the schema does not know, repeated and map fields, nested messages down to
a depth limit, and strings that are empty, blank, long or far from ASCII. `field_path_exists`
says whether a google.rpc.BadRequest field path ("documents[0].title") names a field of a type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor, descriptor_pool, message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import strategies as st


FD = descriptor.FieldDescriptor
# A message descriptor: google.protobuf.descriptor.Descriptor or its upb implementation, which
# the stubs type apart.
MessageType = Any

INT32_EDGES = [0, 1, -1, 2**31 - 1, -(2**31), 100, 101, 1_000_000]
INT64_EDGES = [0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1]
UINT32_EDGES = [0, 1, 2**32 - 1]
UINT64_EDGES = [0, 1, 2**64 - 1]
FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 3.4e38, 1e-45, 10.5]
UNKNOWN_ENUM_NUMBERS = [-1, 99, 2**31 - 1, -(2**31)]
# Strings that trip naive code: blank, control characters, path tricks, markup, scripts far
# from ASCII, combining marks, emoji, and lengths around and far beyond typical limits.
EDGE_STRINGS = [
    "",
    " ",
    "\t\n",
    "\x00",
    "workflows/",
    "workflows/../../etc/passwd",
    "workflows/%2e%2e",
    "state = RUNNING",
    "kind = RESEARCH AND state != FAILED",
    "state = ",
    "((((",
    "<script>alert(1)</script>",
    "'; DROP TABLE workflows; --",
    "\u202eRTL override",
    "e\u0301" * 50,
    "🧠" * 600,
    "ß" * 2001,
    "x" * 2000,
    "x" * 2001,
    "y" * 100_000,
    "How do language model agents use self-reflection?",
]


def _floats(width: int) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(width=width))  # type: ignore[arg-type]


def texts() -> st.SearchStrategy[str]:
    """Short random text, any Unicode (no surrogates), or one of EDGE_STRINGS."""
    return st.one_of(st.text(max_size=40), st.sampled_from(EDGE_STRINGS))


_SCALARS: dict[int, Callable[[], st.SearchStrategy[Any]]] = {
    FD.TYPE_INT32: lambda: st.one_of(
        st.sampled_from(INT32_EDGES), st.integers(-(2**31), 2**31 - 1)
    ),
    FD.TYPE_SINT32: lambda: st.sampled_from(INT32_EDGES),
    FD.TYPE_SFIXED32: lambda: st.sampled_from(INT32_EDGES),
    FD.TYPE_INT64: lambda: st.one_of(
        st.sampled_from(INT64_EDGES), st.integers(-(2**63), 2**63 - 1)
    ),
    FD.TYPE_SINT64: lambda: st.sampled_from(INT64_EDGES),
    FD.TYPE_SFIXED64: lambda: st.sampled_from(INT64_EDGES),
    FD.TYPE_UINT32: lambda: st.sampled_from(UINT32_EDGES),
    FD.TYPE_FIXED32: lambda: st.sampled_from(UINT32_EDGES),
    FD.TYPE_UINT64: lambda: st.sampled_from(UINT64_EDGES),
    FD.TYPE_FIXED64: lambda: st.sampled_from(UINT64_EDGES),
    FD.TYPE_FLOAT: lambda: _floats(32),
    FD.TYPE_DOUBLE: lambda: _floats(64),
    FD.TYPE_BOOL: st.booleans,
    FD.TYPE_STRING: texts,
    FD.TYPE_BYTES: lambda: st.one_of(
        st.binary(max_size=64), st.just(b"\x00" * 70_000), st.just(b"\xff\xfe")
    ),
}


def _single(field: FD, depth: int) -> st.SearchStrategy[Any] | None:
    """Values of one element of `field`; None for a message field below the depth limit."""
    if field.type == FD.TYPE_ENUM:
        assert field.enum_type is not None
        known = [value.number for value in field.enum_type.values]
        return st.sampled_from(known + UNKNOWN_ENUM_NUMBERS)
    if field.message_type is not None:
        return None if depth <= 0 else messages(field.message_type, depth - 1)
    return _SCALARS[field.type]()


def _field_values(field: FD, depth: int) -> st.SearchStrategy[Any] | None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key = _single(field.message_type.fields_by_name["key"], depth)
        value = _single(field.message_type.fields_by_name["value"], depth)
        if key is None or value is None:
            return None
        return st.dictionaries(key, value, max_size=3)
    single = _single(field, depth)
    if single is None:
        return None
    if field.is_repeated:
        return st.lists(single, max_size=3)
    return single


def _build(cls: type[Message], values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, Message):
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            for item in value:
                if isinstance(item, Message):
                    target.add().CopyFrom(item)
                else:
                    target.append(item)
        elif isinstance(value, Message):
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


_CACHE: dict[tuple[str, int], st.SearchStrategy[Message]] = {}


def messages(message_type: MessageType, depth: int = 3) -> st.SearchStrategy[Message]:
    """Instances of `message_type`, any subset of fields set, nesting at most `depth` deep."""
    key = (message_type.full_name, depth)
    if key not in _CACHE:
        cls = message_factory.GetMessageClass(message_type)
        optional: dict[str, st.SearchStrategy[Any]] = {}
        for field in message_type.fields:
            values = _field_values(field, depth)
            if values is not None:
                optional[field.name] = values
        _CACHE[key] = st.fixed_dictionaries({}, optional=optional).map(
            lambda values: _build(cls, values)
        )
    return _CACHE[key]


_SEGMENT = re.compile(r"^([a-z_][a-z0-9_]*)(\[\d+\])?$")


def field_path_exists(message_type: MessageType, path: str) -> bool:
    """Whether `path` ("workflow.parameters.sources[0]") names a field of `message_type`."""
    current: MessageType | None = message_type
    for segment in path.split("."):
        match = _SEGMENT.match(segment)
        if current is None or match is None:
            return False
        field = current.fields_by_name.get(match.group(1))
        if field is None or (match.group(2) and not field.is_repeated):
            return False
        current = field.message_type
    return True


@dataclass(frozen=True)
class Method:
    """One RPC of a service: its path, request and response classes, and whether it streams."""

    service: str
    name: str
    request: type[Message]
    response: type[Message]
    server_streaming: bool

    @property
    def path(self) -> str:
        """The HTTP/2 path of the method ("/pkg.Service/Method")."""
        return f"/{self.service}/{self.name}"

    def __str__(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}.{self.name}"


def methods_of(service_name: str) -> Iterator[Method]:
    """Every unary-request method of a service registered in the default pool."""
    service = descriptor_pool.Default().FindServiceByName(service_name)
    for method in service.methods:
        if method.client_streaming:
            continue
        yield Method(
            service_name,
            method.name,
            message_factory.GetMessageClass(method.input_type),
            message_factory.GetMessageClass(method.output_type),
            method.server_streaming,
        )


def bad_request_paths(error: grpc.aio.AioRpcError) -> list[str]:
    """The field paths of the google.rpc.BadRequest in an error's status details."""
    status = rpc_status.from_call(error)
    if status is None:
        return []
    paths: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            paths.extend(v.field for v in bad_request.field_violations)
    return paths


def mutants(valid: Message, depth: int = 3) -> st.SearchStrategy[Message]:
    """Copies of a valid message with some of its top-level fields replaced by fuzzed values
    (set or cleared): requests that get past the first checks and reach deeper code."""
    descriptor_ = valid.DESCRIPTOR
    names = [field.name for field in descriptor_.fields]

    def mutate(fuzzed: Message, chosen: list[str]) -> Message:
        out = type(valid)()
        out.CopyFrom(valid)
        for name in chosen:
            part = type(valid)()
            part.CopyFrom(fuzzed)
            for other in names:
                if other != name:
                    part.ClearField(other)
            out.ClearField(name)
            out.MergeFrom(part)
        return out

    return st.builds(
        mutate, messages(descriptor_, depth), st.lists(st.sampled_from(names), unique=True)
    )
