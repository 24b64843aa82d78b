"""A cache backend on Redis, shared by every replica of the embedding service.

Layout under `prefix` (default `ponder:cache`):

- `{prefix}:e:{key}`: one hash per entry, expired by Redis itself (PEXPIREAT at expire_time);
- `{prefix}:ns:{namespace}`: the keys of a namespace, a sorted set scored by expire time (ms),
  so stale members (expired entries) are pruned by score in the next put's transaction;
- `{prefix}:log`: a stream of changes (op=put|del, key, origin) appended in the same MULTI/EXEC
  as the data change; `changes()` reads it from where this instance left off and skips its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError
from redis.typing import EncodableT, FieldT, StreamEntry, XReadResponse

from ponder_embedding.cache.entries import CacheChange, CacheEntry
from ponder_runtime.redis_values import as_bytes, as_text


_log = logging.getLogger(__name__)

LOG_MAXLEN = 100_000  # approximate length the change log is trimmed to
_BATCH = 500  # keys per SCAN step, pipeline and script call
_CONNECT_TIMEOUT_S = 5.0
_SOCKET_TIMEOUT_S = 10.0
_FIELDS = (
    "namespace",
    "text",
    "payload",
    "payload_type",
    "vector",
    "create_time",
    "expire_time",
    "hit_count",
    "last_access",
)

# KEYS: entry hashes; ARGV: hits and last_access per key, in pairs. Missing keys are skipped, so
# a hit recorded after a delete (or expiry) does not bring the key back as a partial hash.
_RECORD_HITS = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'hit_count', ARGV[2 * i - 1])
    local last = tonumber(redis.call('HGET', key, 'last_access') or '0') or 0
    if tonumber(ARGV[2 * i]) > last then
      redis.call('HSET', key, 'last_access', ARGV[2 * i])
    end
  end
end
return 0
"""


class RedisUnavailableError(ConnectionError):
    """Redis could not be reached (or answered with an error) when connecting."""


def _glob_escape(text: str) -> str:
    """`text` with the glob metacharacters of SCAN MATCH escaped."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _redact(url: str) -> str:
    """`url` without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _stream_records(reply: XReadResponse) -> list[StreamEntry]:
    """The records of the one stream in an XREAD reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (records,) = reply.values()
        # RESP3 nests the records one level deeper in some redis-py versions.
        if records and isinstance(records[0], list):
            return list(records[0])
        return list(records)  # type: ignore[arg-type]
    return list(reply[0][1])


def _ms(seconds: float) -> int:
    """Unix seconds as Unix milliseconds."""
    return int(seconds * 1000)


class RedisBackend:
    """CacheBackend on a Redis shared by all replicas; call `connect()` before using it."""

    def __init__(self, url: str, *, prefix: str = "ponder:cache") -> None:
        self._url = url
        self._prefix = prefix
        self._origin = uuid.uuid4().hex
        self._redis = aioredis.Redis.from_url(
            url,
            decode_responses=False,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_SOCKET_TIMEOUT_S,
        )
        self._record_hits_script = self._redis.register_script(_RECORD_HITS)
        self._last_id: bytes | None = None  # the last change-log id this instance has seen

    @classmethod
    async def create(cls, url: str, *, prefix: str = "ponder:cache") -> RedisBackend:
        """A connected backend (see `connect`)."""
        backend = cls(url, prefix=prefix)
        try:
            await backend.connect()
        except BaseException:
            await backend.close()
            raise
        return backend

    @property
    def origin(self) -> str:
        """This instance's random id, written as `origin` on the change log."""
        return self._origin

    async def connect(self) -> None:
        """Ping Redis and note the change log's end; raise RedisUnavailableError if unreachable."""
        try:
            await self._redis.ping()
            last = await self._redis.xrevrange(self._log_key, count=1)
        except (RedisError, OSError) as exc:
            raise RedisUnavailableError(
                f"cannot reach Redis at {_redact(self._url)}: {exc}"
            ) from exc
        # `$` semantics: changes() reports what happens after this point; load_all covers the rest.
        self._last_id = b"0-0"
        if last and last[0][0] is not None:
            self._last_id = as_bytes(last[0][0])

    async def load_all(self, now: float) -> list[CacheEntry]:
        """Every entry that has not expired at `now` (SCAN of the entry hashes)."""
        entries: list[CacheEntry] = []
        skip = len(self._entry_key(""))
        batch: list[bytes] = []
        async for name in self._redis.scan_iter(
            match=_glob_escape(self._entry_key("")) + "*", count=_BATCH
        ):
            batch.append(as_bytes(name))
            if len(batch) >= _BATCH:
                entries.extend(await self._fetch([n[skip:].decode() for n in batch], now))
                batch = []
        if batch:
            entries.extend(await self._fetch([n[skip:].decode() for n in batch], now))
        return entries

    async def put(self, entry: CacheEntry) -> None:
        """Store or replace `entry` and log it, in one MULTI/EXEC."""
        name = self._entry_key(entry.key)
        ns_key = self._ns_key(entry.namespace)
        expire_ms = _ms(entry.expire_time)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            pipe.hset(name, mapping=self._encode(entry))
            pipe.pexpireat(name, expire_ms)
            pipe.zadd(ns_key, {entry.key: expire_ms})
            pipe.zremrangebyscore(ns_key, "-inf", _ms(time.time()))
            self._log_change(pipe, "put", entry.key)
            await pipe.execute()

    async def get(self, key: str) -> CacheEntry | None:
        """The entry stored under `key`, if Redis still has it."""
        fields = await self._redis.hgetall(self._entry_key(key))
        return self._decode(key, fields)

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove these entries and log the removals, in one MULTI/EXEC."""
        if not keys:
            return
        # Their namespace sets keep the keys until the score (expire time) passes: harmless.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(self._entry_key(key) for key in keys))
            for key in keys:
                self._log_change(pipe, "del", key)
            await pipe.execute()

    async def delete_namespace(self, namespace: str) -> list[str]:
        """Remove every entry of `namespace` and return the keys of those that existed."""
        ns_key = self._ns_key(namespace)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(ns_key)  # a put into the namespace meanwhile: retry
                    members = await pipe.zrange(ns_key, 0, -1)
                    keys = [as_text(m) for m in members if isinstance(m, bytes | str)]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for key in keys:
                        pipe.delete(self._entry_key(key))
                        self._log_change(pipe, "del", key)
                    pipe.delete(ns_key)
                    results = await pipe.execute()
                except WatchError:
                    continue
                # Results alternate DEL (1 if the hash existed), XADD; then the set's DEL.
                return [key for key, deleted in zip(keys, results[0:-1:2], strict=True) if deleted]

    async def record_hits(self, hits: Sequence[tuple[str, int, float]]) -> None:
        """Add hit counts and raise last_access; keys that no longer exist are skipped."""
        for start in range(0, len(hits), _BATCH):
            chunk = hits[start : start + _BATCH]
            args: list[int | str] = []
            for _, count, last_access in chunk:
                args.extend((int(count), repr(float(last_access))))
            await self._record_hits_script(
                keys=[self._entry_key(key) for key, _, _ in chunk], args=args
            )

    async def changes(self) -> list[CacheChange]:
        """What other replicas stored or removed since the last call (non-blocking XREAD).

        Each key is reported once, as its current state: the stored entry, or None if it is
        gone (deleted, expired, or expiring by now)."""
        if self._last_id is None:
            raise RuntimeError("RedisBackend.connect() has not been called")
        touched: dict[str, None] = {}  # keys in order of their last change
        while True:
            reply = await self._redis.xread({self._log_key: self._last_id}, count=_BATCH)
            records = _stream_records(reply)
            for record_id, fields in records:
                if record_id is None:
                    continue
                self._last_id = as_bytes(record_id)
                if not fields or as_text(fields.get(b"origin", b"")) == self._origin:
                    continue
                key = as_text(fields.get(b"key", b""))
                if key:
                    touched.pop(key, None)
                    touched[key] = None
            if len(records) < _BATCH:
                break
        if not touched:
            return []
        keys = list(touched)
        now = time.time()
        found = {entry.key: entry for entry in await self._fetch(keys, now)}
        return [CacheChange(key, found.get(key)) for key in keys]

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    @property
    def _log_key(self) -> str:
        """The change-log stream."""
        return f"{self._prefix}:log"

    def _entry_key(self, key: str) -> str:
        """The hash of entry `key`."""
        return f"{self._prefix}:e:{key}"

    def _ns_key(self, namespace: str) -> str:
        """The sorted set of the keys of `namespace`, scored by expire time (ms)."""
        return f"{self._prefix}:ns:{namespace}"

    def _log_change(self, pipe: Pipeline, op: str, key: str) -> None:
        """Queue the change-log record of `op` on `key` in `pipe`."""
        pipe.xadd(
            self._log_key,
            {"op": op, "key": key, "origin": self._origin},
            maxlen=LOG_MAXLEN,
            approximate=True,
        )

    async def _fetch(self, keys: Sequence[str], now: float) -> list[CacheEntry]:
        """The entries of `keys` that exist and have not expired at `now` (one pipeline)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self._entry_key(key))
            replies = await pipe.execute()
        entries = []
        for key, fields in zip(keys, replies, strict=True):
            entry = self._decode(key, fields)
            if entry is not None and not entry.expired(now):
                entries.append(entry)
        return entries

    @staticmethod
    def _encode(entry: CacheEntry) -> dict[FieldT, EncodableT]:
        """The hash fields of `entry`."""
        return {
            "namespace": entry.namespace,
            "text": entry.text,
            "payload": entry.payload or b"",
            "payload_type": entry.payload_type,
            "vector": np.asarray(entry.vector).astype("<f4").tobytes(),
            "create_time": repr(float(entry.create_time)),
            "expire_time": repr(float(entry.expire_time)),
            "hit_count": int(entry.hit_count),
            "last_access": repr(float(entry.last_access)),
        }

    @staticmethod
    def _decode(key: str, fields: Mapping[bytes | str, bytes | str]) -> CacheEntry | None:
        """The entry in the hash `fields` of `key`; None if the hash is empty or malformed."""
        if not fields:
            return None
        values = {as_text(name): value for name, value in fields.items()}
        missing = [name for name in _FIELDS if name not in values]
        if missing:
            _log.warning("cache entry %s in Redis lacks %s; ignored", key, ", ".join(missing))
            return None
        try:
            return CacheEntry(
                key=key,
                namespace=as_text(values["namespace"]),
                text=as_text(values["text"]),
                payload=as_bytes(values["payload"]),
                payload_type=as_text(values["payload_type"]),
                vector=np.frombuffer(as_bytes(values["vector"]), dtype="<f4").astype(np.float32),
                create_time=float(values["create_time"]),
                expire_time=float(values["expire_time"]),
                hit_count=int(values["hit_count"]),
                last_access=float(values["last_access"]),
            )
        except (ValueError, UnicodeDecodeError) as exc:
            _log.warning("cache entry %s in Redis is malformed (%s); ignored", key, exc)
            return None
