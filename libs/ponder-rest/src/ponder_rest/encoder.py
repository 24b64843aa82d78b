"""Responses to proto3 JSON objects, with the JSON of large sub-messages memoized.

protobuf's `json_format` is pure Python and costs most of a cached answer's time (a workflow's
cited result is several KB). Answers that repeat — a cache hit copies the earlier result —
share sub-messages byte for byte, so the JSON of a sub-message of at least `min_bytes` is kept
in a small LRU keyed by its type and serialized bytes: the same bytes always give the same
JSON, so the memo can never serve a wrong answer.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from google.protobuf.message import Message

from ponder_rest.codec import JsonOptions, message_to_obj


_WELL_KNOWN = "google.protobuf."


class MessageEncoder:
    """proto3 JSON objects of messages (see module docstring)."""

    def __init__(
        self, options: JsonOptions, *, min_bytes: int = 1024, max_entries: int = 256
    ) -> None:
        self._options = options
        self._min = min_bytes
        self._max = max_entries
        self._memo: OrderedDict[tuple[str, bytes], Any] = OrderedDict()

    def to_obj(self, message: Message) -> Any:
        """The JSON object of `message` (shared sub-objects: do not mutate the result)."""
        large = [
            (field, value)
            for field, value in message.ListFields()
            if field.message_type is not None
            and not field.is_repeated
            and not field.message_type.full_name.startswith(_WELL_KNOWN)
            and value.ByteSize() >= self._min
        ]
        if not large or self._max <= 0:
            return message_to_obj(message, self._options)
        rest = type(message)()
        rest.CopyFrom(message)
        for field, _ in large:
            rest.ClearField(field.name)
        obj = message_to_obj(rest, self._options)
        for field, value in large:
            name = field.name if self._options.use_proto_names else field.json_name
            obj[name] = self._memoized(value)
        return obj

    def _memoized(self, message: Message) -> Any:
        key = (message.DESCRIPTOR.full_name, message.SerializeToString(deterministic=True))
        found = self._memo.get(key)
        if found is not None:
            self._memo.move_to_end(key)
            return found
        found = self.to_obj(message)
        self._memo[key] = found
        while len(self._memo) > self._max:
            self._memo.popitem(last=False)
        return found
