"""Responses to proto3 JSON, with the JSON of sub-messages that repeat memoized.

protobuf's `json_format` is pure Python and costs most of a cached answer's time (a workflow's
cited result is several KB). Answers that repeat — a cache hit copies the earlier result —
share sub-messages byte for byte, so the JSON of a single sub-message field is kept in a small
LRU keyed by its type and serialized bytes: the same bytes always give the same JSON, so the
memo can never serve a wrong answer. Those of at least `min_bytes` have an LRU of their own, so
the many small ones (a workflow's parameters, its cache info) do not push out the large. The
JsonWriter asks for them field by field (no copy of the message without its large parts), and
`to_json` splices the kept JSON text in as an `orjson.Fragment`.

Keying costs a serialization, so a field whose large values keep missing while large parts of
them hit (a new answer around a reused part: it never repeats, its part does), or whose small
values keep missing, is not keyed for a while — 1, 2, 4 … up to 64 of its values, then tried
again; a hit keys it every time again. A large miss with no large hit inside (a new answer, new
parts) costs little next to its encoding and pauses nothing.

A replay answers the very same message object again: `to_json` keeps its last answers by
identity, and the JSON of one answered twice is served again while its bytes are still those it
had (a compare, no hash), so an answer that never repeats is never serialized whole.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ponder_rest.codec import JsonOptions, dumps
from ponder_rest.json_writer import Convert, JsonWriter


_MISSES = 3  # misses in a row (see module docstring) before a field is left unkeyed a while
_LONGEST_PAUSE = 64  # values of a field left unkeyed at most, before it is tried again


class MessageEncoder:
    """proto3 JSON objects and text of messages (see module docstring)."""

    def __init__(
        self, options: JsonOptions, *, min_bytes: int = 1024, max_entries: int = 256
    ) -> None:
        self._objects = _Memo(options, min_bytes, max_entries, _same)
        self._texts = _Memo(options, min_bytes, max_entries, _fragment)
        # The memos of large sub-messages, by type and bytes.
        self._memo = self._objects.entries
        self._fragments = self._texts.entries
        # Recent answers by identity, least recently seen first: the message (kept, so its id
        # is not reused), and once it was answered twice, its bytes and JSON text.
        self._answers: OrderedDict[int, _Answer] = OrderedDict()
        self._most_answers = max(max_entries // 4, 1)
        self._enabled = max_entries > 0

    def to_json(self, message: Message) -> bytes:
        """The JSON text of `message` (see module docstring)."""
        if not self._enabled:
            return self._texts.text(message)
        answers = self._answers
        answer = answers.get(id(message))
        if answer is None or answer.message is not message:
            answers[id(message)] = _Answer(message)
            if len(answers) > self._most_answers:
                answers.popitem(last=False)
            return self._texts.text(message)
        answers.move_to_end(id(message))
        data = message.SerializeToString(deterministic=True)
        if answer.text is None or answer.data != data:
            answer.data, answer.text = data, self._texts.text(message)
        return answer.text

    def to_obj(self, message: Message) -> Any:
        """The JSON object of `message` (shared sub-objects: do not mutate the result)."""
        return self._objects.writer.to_obj(message)


class _Answer:
    """An answer seen by `to_json`; its bytes and text once it came again."""

    __slots__ = ("data", "message", "text")

    def __init__(self, message: Message) -> None:
        self.message = message
        self.data = b""
        self.text: bytes | None = None


class _Memo:
    """A JsonWriter whose single sub-messages are memoized as `finish` makes them: large ones
    and small ones in LRUs of their own (the many small ones do not push the large out)."""

    def __init__(
        self, options: JsonOptions, min_bytes: int, max_entries: int, finish: Convert
    ) -> None:
        # LRUs by type and bytes, the least recently used first.
        self.entries: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
        self.small: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
        self._most = max(max_entries, 1)
        self._min = min_bytes
        self._finish = finish
        self.hits = 0  # large hits so far (a miss around them: a new answer around old parts)
        self.writer = JsonWriter(options, sub_messages=self._field if max_entries > 0 else None)

    def text(self, message: Message) -> bytes:
        """The JSON text of `message`, memoized parts spliced in."""
        return dumps(self.writer.to_obj(message))

    def _field(self, field: FieldDescriptor, plain: Convert) -> Convert:
        """The conversion of a sub-message `field`: through the memo while keying it pays."""
        assert field.message_type is not None
        kind = field.message_type.full_name
        entries, small, least, most = self.entries, self.small, self._min, self._most
        finish = self._finish
        memo, pause = self, _Pause()

        def convert(value: Message) -> Any:
            if pause.left:
                pause.left -= 1
                return plain(value)
            data = value.SerializeToString(deterministic=True)
            kept = entries if len(data) >= least else small
            key = (kind, data)
            found = kept.get(key)
            if found is not None:
                kept.move_to_end(key)
                if kept is entries:
                    memo.hits += 1
                pause.misses = 0
                pause.length = 1
                return found
            hits = memo.hits
            found = kept[key] = finish(plain(value))
            if len(kept) > most:
                kept.popitem(last=False)
            # Keying a small value costs about what it saves; a large one that is new around
            # large parts that repeat will not repeat itself.
            if kept is small or memo.hits != hits:
                pause.missed()
            return found

        return convert


class _Pause:
    """How long a field is left unkeyed: it doubles with each run of misses, a hit ends it."""

    __slots__ = ("left", "length", "misses")

    def __init__(self) -> None:
        self.left = 0
        self.length = 1
        self.misses = 0

    def missed(self) -> None:
        """One more miss (or small value): after `_MISSES` in a row, pause; once paused, the
        next miss pauses again, twice as long."""
        self.misses += 1
        if self.misses >= _MISSES:
            self.left = self.length
            self.length = min(self.length * 2, _LONGEST_PAUSE)
            self.misses = _MISSES - 1


def _same(obj: Any) -> Any:
    """The object itself (to_obj's memo keeps objects)."""
    return obj


def _fragment(obj: Any) -> orjson.Fragment:
    """The object's JSON text, spliced in as it is by orjson (to_json's memo keeps text)."""
    return orjson.Fragment(dumps(obj))
