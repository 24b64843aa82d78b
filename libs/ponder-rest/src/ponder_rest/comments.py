"""Proto comments, read from the SourceCodeInfo of a FileDescriptorSet.

The generated Python modules carry no source info, so the documentation of messages, fields,
enums, services and methods comes from a descriptor set written with `protoc
--include_source_info --include_imports --descriptor_set_out=...`.

Names are full proto names:

    pkg.Message            pkg.Message.field         pkg.Message.Nested.field
    pkg.Message.oneof_name pkg.Enum                  pkg.Enum.VALUE (also pkg.Message.Enum.VALUE)
    pkg.Service            pkg.Service.Method
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from types import MappingProxyType

from google.protobuf import descriptor_pb2


# Field numbers of the descriptor.proto messages that SourceCodeInfo paths are made of.
_FILE_MESSAGE_TYPE = 4
_FILE_ENUM_TYPE = 5
_FILE_SERVICE = 6
_MESSAGE_FIELD = 2
_MESSAGE_NESTED_TYPE = 3
_MESSAGE_ENUM_TYPE = 4
_MESSAGE_ONEOF_DECL = 8
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


def clean_comment(raw: str) -> str:
    """A comment as protoc reports it, without the common indentation and the blank edges.

    protoc keeps what follows `//` on every line (usually one space first), and strips the
    leading `*` of the lines of a block comment itself.
    """
    text = textwrap.dedent("\n".join(line.rstrip() for line in raw.splitlines()))
    return text.strip()


class DescriptorComments:
    """Leading comments of the elements of a FileDescriptorSet, by full proto name."""

    __slots__ = ("_comments",)

    def __init__(self, comments: Mapping[str, str]) -> None:
        self._comments: Mapping[str, str] = MappingProxyType(dict(comments))

    @classmethod
    def empty(cls) -> DescriptorComments:
        """No comments at all: every lookup answers ""."""
        return cls({})

    @classmethod
    def from_bytes(cls, file_descriptor_set: bytes) -> DescriptorComments:
        """The comments of a serialized google.protobuf.FileDescriptorSet."""
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(file_descriptor_set)
        return cls.from_files(descriptor_set.file)

    @classmethod
    def from_resource(cls, package: str, name: str = "descriptors.binpb") -> DescriptorComments:
        """The comments of a FileDescriptorSet shipped as package data, e.g.
        `from_resource("ponder")` for the set scripts/genproto.py writes next to the stubs."""
        return cls.from_bytes((resources.files(package) / name).read_bytes())

    @classmethod
    def from_files(cls, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> DescriptorComments:
        """The comments of FileDescriptorProtos (those without source info add nothing)."""
        comments: dict[str, str] = {}
        for file in files:
            comments.update(_file_comments(file))
        return cls(comments)

    def merged(self, other: DescriptorComments) -> DescriptorComments:
        """These comments and `other`'s; a non-empty comment of `other` wins on a clash."""
        combined = dict(self._comments)
        combined.update((name, text) for name, text in other._comments.items() if text)
        return DescriptorComments(combined)

    def comment(self, full_name: str) -> str:
        """The cleaned leading comment of an element, or "" when it has none or is unknown."""
        return self._comments.get(full_name.lstrip("."), "")

    def __contains__(self, full_name: object) -> bool:
        return isinstance(full_name, str) and full_name.lstrip(".") in self._comments

    def __len__(self) -> int:
        return len(self._comments)

    def __repr__(self) -> str:
        return f"DescriptorComments({len(self._comments)} elements)"


def _file_comments(file: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Full name -> cleaned leading comment of every element of one file."""
    by_path = {
        tuple(location.path): location.leading_comments
        for location in file.source_code_info.location
        if location.leading_comments
    }
    out: dict[str, str] = {}
    prefix = f"{file.package}." if file.package else ""

    def put(name: str, path: Sequence[int]) -> None:
        out[name] = clean_comment(by_path.get(tuple(path), ""))

    def enum(
        descriptor: descriptor_pb2.EnumDescriptorProto, scope: str, path: Sequence[int]
    ) -> None:
        name = f"{scope}{descriptor.name}"
        put(name, path)
        for index, value in enumerate(descriptor.value):
            put(f"{name}.{value.name}", [*path, _ENUM_VALUE, index])

    def message(
        descriptor: descriptor_pb2.DescriptorProto, scope: str, path: Sequence[int]
    ) -> None:
        name = f"{scope}{descriptor.name}"
        put(name, path)
        for index, field in enumerate(descriptor.field):
            put(f"{name}.{field.name}", [*path, _MESSAGE_FIELD, index])
        for index, oneof in enumerate(descriptor.oneof_decl):
            put(f"{name}.{oneof.name}", [*path, _MESSAGE_ONEOF_DECL, index])
        for index, nested in enumerate(descriptor.nested_type):
            message(nested, f"{name}.", [*path, _MESSAGE_NESTED_TYPE, index])
        for index, nested_enum in enumerate(descriptor.enum_type):
            enum(nested_enum, f"{name}.", [*path, _MESSAGE_ENUM_TYPE, index])

    for index, top in enumerate(file.message_type):
        message(top, prefix, [_FILE_MESSAGE_TYPE, index])
    for index, top_enum in enumerate(file.enum_type):
        enum(top_enum, prefix, [_FILE_ENUM_TYPE, index])
    for index, service in enumerate(file.service):
        service_name = f"{prefix}{service.name}"
        put(service_name, [_FILE_SERVICE, index])
        for method_index, method in enumerate(service.method):
            method_path = [_FILE_SERVICE, index, _SERVICE_METHOD, method_index]
            put(f"{service_name}.{method.name}", method_path)
    return out
