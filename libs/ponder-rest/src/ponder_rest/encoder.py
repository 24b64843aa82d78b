"""Responses to proto3 JSON objects, with the JSON of large sub-messages memoized.

protobuf's `json_format` is pure Python and costs most of a cached answer's time (a workflow's
cited result is several KB). Answers that repeat — a cache hit copies the earlier result —
share sub-messages byte for byte, so the JSON of a sub-message of at least `min_bytes` (not
counting its own large sub-messages) is kept in a small LRU keyed by its type and serialized
bytes: the same bytes always give the same JSON, so the memo can never serve a wrong answer.
Whole answers of that size are memoized the same way in a separate LRU (a replayed answer is
the same message again: its JSON costs a dictionary lookup), so answers that never repeat do
not push out the shared parts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache
from google.protobuf.message import Message

from ponder_rest.codec import JsonOptions, dumps
from ponder_rest.json_writer import JsonWriter


_WELL_KNOWN = "google.protobuf."


class MessageEncoder:
    """proto3 JSON objects of messages (see module docstring)."""

    def __init__(
        self, options: JsonOptions, *, min_bytes: int = 1024, max_entries: int = 256
    ) -> None:
        self._options = options
        self._writer = JsonWriter(options)
        self._min = min_bytes
        self._max = max_entries
        # cachetools LRUs (the least recently used goes first), by type and bytes.
        self._memo: LRUCache[tuple[str, bytes], Any] = LRUCache(max(max_entries, 1))
        self._fragments: LRUCache[tuple[str, bytes], bytes] = LRUCache(max(max_entries, 1))
        self._answers: LRUCache[tuple[str, bytes], bytes] = LRUCache(max(max_entries // 4, 1))
        # Stands in for a memoized fragment while the rest is encoded; random, so no value
        # of a message can be mistaken for it.
        self._token = f"\u0000ponder-json-{uuid.uuid4().hex}-"
        # Per message type: its single, non-well-known sub-message fields (memo candidates).
        self._candidates: dict[str, tuple[Any, ...]] = {}

    def _large(self, message: Message) -> list[tuple[Any, Message, int]]:
        """The set sub-message fields of at least `min_bytes`: (field, value, its size)."""
        if self._max <= 0:
            return []
        descriptor = message.DESCRIPTOR
        fields = self._candidates.get(descriptor.full_name)
        if fields is None:
            fields = self._candidates[descriptor.full_name] = tuple(
                field
                for field in descriptor.fields
                if field.message_type is not None
                and not field.is_repeated
                and not field.message_type.full_name.startswith(_WELL_KNOWN)
            )
        found = []
        for field in fields:
            if message.HasField(field.name):
                value = getattr(message, field.name)
                size = value.ByteSize()
                if size >= self._min:
                    found.append((field, value, size))
        return found

    def to_json(self, message: Message) -> bytes:
        """The JSON text of `message`: memoized when large (see module docstring)."""
        if self._max <= 0 or message.ByteSize() < self._min:
            return self._to_json(message)
        return self._remembered(self._answers, message, self._to_json)

    def _to_json(self, message: Message) -> bytes:
        """The JSON text of `message`; memoized fragments are spliced in as bytes."""
        return self._spliced(message, self._large(message))

    def _spliced(self, message: Message, large: list[tuple[Any, Message, int]]) -> bytes:
        """The JSON text of `message`, its `large` fields spliced in from the memo."""
        if not large:
            return dumps(self._writer.to_obj(message))
        rest = type(message)()
        rest.CopyFrom(message)
        for field, _, _ in large:
            rest.ClearField(field.name)
        obj = self._writer.to_obj(rest)
        splices: list[tuple[bytes, bytes]] = []
        for index, (field, value, size) in enumerate(large):
            token = f"{self._token}{index}"
            obj[field.name if self._options.use_proto_names else field.json_name] = token
            splices.append((dumps(token), self._fragment(value, size)))
        text = dumps(obj)
        for token_json, fragment in splices:
            text = text.replace(token_json, fragment, 1)
        return text

    def _fragment(self, message: Message, size: int) -> bytes:
        """A large sub-message's JSON (`size`: its bytes): memoized, unless it is large only
        through large parts of its own (a new workflow around a reused result: it never
        repeats, its parts do; keying it would serialize it for nothing)."""
        large = self._large(message)
        own = size - sum(part for _, _, part in large)
        if own < self._min:
            return self._spliced(message, large)
        return self._remembered(self._fragments, message, lambda _: self._spliced(message, large))

    @staticmethod
    def _remembered(
        memo: LRUCache[tuple[str, bytes], bytes],
        message: Message,
        encode: Callable[[Message], bytes],
    ) -> bytes:
        """`encode(message)`, from `memo` if there."""
        key = (message.DESCRIPTOR.full_name, message.SerializeToString(deterministic=True))
        found = memo.get(key)
        if found is None:
            found = memo[key] = encode(message)
        return found

    def to_obj(self, message: Message) -> Any:
        """The JSON object of `message` (shared sub-objects: do not mutate the result)."""
        large = self._large(message)
        if not large:
            return self._writer.to_obj(message)
        rest = type(message)()
        rest.CopyFrom(message)
        for field, _, _ in large:
            rest.ClearField(field.name)
        obj = self._writer.to_obj(rest)
        for field, value, _ in large:
            name = field.name if self._options.use_proto_names else field.json_name
            obj[name] = self._memoized(value)
        return obj

    def _memoized(self, message: Message) -> Any:
        key = (message.DESCRIPTOR.full_name, message.SerializeToString(deterministic=True))
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self.to_obj(message)
        return found
