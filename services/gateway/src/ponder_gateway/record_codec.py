"""How a workflow record is kept small: its result apart, stored once under the hash of its
bytes (a cache hit shares the result of the workflow it reuses), and both parts compressed with
zlib when that saves space."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from cachetools import LRUCache

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2


RAW = 0  # codec: serialized protobuf
ZLIB = 1  # codec: zlib over the serialized protobuf
_COMPRESS_OVER = 1024  # bytes: smaller records (a cache hit's: ~350 B) are kept as they are
_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record ready to store: its bytes without the result (`data`, in `codec`), and the
    result's content hash and compressed bytes (None when it has no result)."""

    data: bytes
    codec: int
    result_hash: bytes | None
    result: bytes | None


def pack(data: bytes) -> tuple[bytes, int]:
    """`data` compressed when that is worth it, and the codec used."""
    if len(data) > _COMPRESS_OVER:
        packed = zlib.compress(data, _LEVEL)
        if len(packed) < len(data):
            return packed, ZLIB
    return data, RAW


def unpack(data: bytes, codec: int) -> bytes:
    """The bytes `pack` was given."""
    return zlib.decompress(data) if codec == ZLIB else data


class RecordCodec:
    """Splits records for storage and joins them back; remembers the hashes and compressed
    bytes of the results it saw last, by their bytes (a result reused by many cache hits is
    hashed and compressed once)."""

    def __init__(self) -> None:
        self._results: LRUCache[bytes, tuple[bytes, bytes]] = LRUCache(maxsize=256)

    def encode(self, workflow: workflow_pb2.Workflow) -> Encoded:
        """The record's parts (the result apart, hashed and compressed)."""
        if not workflow.HasField("result"):
            data, codec = pack(workflow.SerializeToString())
            return Encoded(data, codec, None, None)
        body = workflow_pb2.Workflow()
        body.CopyFrom(workflow)
        body.ClearField("result")
        data, codec = pack(body.SerializeToString())
        raw = workflow.result.SerializeToString(deterministic=True)
        known = self._results.get(raw)
        if known is None:
            known = hashlib.sha256(raw).digest()[:16], zlib.compress(raw, _LEVEL)
            self._results[raw] = known
        return Encoded(data, codec, known[0], known[1])


def decode(data: bytes, codec: int, result: bytes | None) -> workflow_pb2.Workflow:
    """A stored record back, with its result when it has one (`result`: zlib bytes)."""
    workflow = workflow_pb2.Workflow.FromString(unpack(data, codec))
    if result is not None:
        workflow.result.ParseFromString(zlib.decompress(result))
    return workflow
