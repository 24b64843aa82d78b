"""Gateway state shared by replicas through Redis: workflow records and rate-limit buckets."""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import Filter, matches
from ponder_gateway.record_codec import RecordCodec, decode
from ponder_gateway.record_plan import REDIS_SCAN_LIMIT, Page, Plan, Position, plan
from ponder_gateway.store import position_of, tenant_of
from ponder_gateway.webhooks.state import due_at
from ponder_runtime import AlreadyExistsError
from ponder_runtime.groups import Groups
from ponder_runtime.redis_values import as_bytes, as_text


_BATCH = 200
# Deliveries are retried for at most a week (PONDER_GATEWAY_WEBHOOK_RETRY_SECONDS' bound).
_LONGEST_DELIVERY_US = 7 * 24 * 3600 * 10**6

# The record's index entries, kept by one script so that a record and its indexes change
# together: sorted sets by create time (µs) of every record, per tenant, per (tenant, state)
# and per (tenant, kind); finished records by update time (retention); the unfinished set;
# records whose webhook delivery is open by when it is due (the webhook sweep).
# Results live once under their content hash with a reference count.
_LUA_COMMON = """
local P = ARGV[1]
local function release(hash)
  if hash and hash ~= '' then
    local key = P .. ':res:' .. hash
    if redis.call('HINCRBY', key, 'n', -1) <= 0 then redis.call('DEL', key) end
  end
end
local function unindex(name, s, k, t)
  redis.call('ZREM', P .. ':z:all', name)
  redis.call('ZREM', P .. ':z:t:' .. t, name)
  redis.call('ZREM', P .. ':z:ts:' .. t .. ':' .. s, name)
  redis.call('ZREM', P .. ':z:tk:' .. t .. ':' .. k, name)
  redis.call('ZREM', P .. ':finished', name)
  redis.call('SREM', P .. ':unfinished', name)
  redis.call('ZREM', P .. ':due', name)
end
local function finished(s) return s == '3' or s == '4' or s == '5' end
local function remove(name, only_finished)
  local key = P .. ':rec:' .. name
  local old = redis.call('HMGET', key, 's', 'k', 't', 'r')
  if not old[1] then return 0 end
  if only_finished and not finished(old[1]) then return 0 end
  unindex(name, old[1], old[2], old[3])
  redis.call('DEL', key)
  release(old[4])
  return 1
end
"""
_SAVE_BODY = """
local name, s, k, t, hash = ARGV[2], ARGV[5], ARGV[6], ARGV[7], ARGV[10]
local key = P .. ':rec:' .. name
local old = redis.call('HMGET', key, 's', 'k', 't', 'r')
if old[1] then unindex(name, old[1], old[2], old[3]) end
local previous = old[4] or ''
if previous ~= hash then
  if hash ~= '' then
    local rkey = P .. ':res:' .. hash
    redis.call('HSETNX', rkey, 'd', ARGV[11])
    redis.call('HINCRBY', rkey, 'n', 1)
  end
  release(previous)
end
redis.call('HSET', key, 'd', ARGV[3], 'c', ARGV[4], 's', s, 'k', k, 't', t, 'r', hash)
local score = ARGV[8]
redis.call('ZADD', P .. ':z:all', score, name)
redis.call('ZADD', P .. ':z:t:' .. t, score, name)
redis.call('ZADD', P .. ':z:ts:' .. t .. ':' .. s, score, name)
redis.call('ZADD', P .. ':z:tk:' .. t .. ':' .. k, score, name)
if finished(s) then
  redis.call('ZADD', P .. ':finished', ARGV[9], name)
else
  redis.call('SADD', P .. ':unfinished', name)
end
if ARGV[12] ~= '' then redis.call('ZADD', P .. ':due', ARGV[12], name) end
return 1
"""
_SAVE = _LUA_COMMON + _SAVE_BODY
# The same for a new record: nothing written (0) when one of that name exists.
_INSERT = (
    _LUA_COMMON
    + "if redis.call('EXISTS', P .. ':rec:' .. ARGV[2]) == 1 then return 0 end"
    + _SAVE_BODY
)
_DELETE = _LUA_COMMON + "return remove(ARGV[2], true)"
_PURGE = (
    _LUA_COMMON
    + """
local names = redis.call('ZRANGEBYSCORE', P .. ':finished', '-inf', '(' .. ARGV[2],
  'LIMIT', 0, tonumber(ARGV[3]))
for _, name in ipairs(names) do remove(name, false) end
return names
"""
)


_Read = tuple[workflow_pb2.Workflow, str]  # a record without its result, and the result's hash
_Names = list[str]


def _micros(nanos: int) -> int:
    return nanos // 1000


class RedisWorkflowStore:
    """Workflow records in Redis: one hash per record (its bytes without the result, codec,
    state, kind, tenant, result hash), results once per content with a reference count, and
    sorted sets by create time for every filter index (record_plan.py): all, per tenant, per
    (tenant, state) and per (tenant, kind); the finished ones by update time for retention.

    Saves are pipelined: those that arrive while a group is on its way go together in the
    next one (one round trip, and with `appendfsync always` one AOF fsync, for the group),
    each still its own atomic script call, acknowledged when Redis has answered it."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "ponder:gateway") -> None:
        self._redis = client
        self._prefix = prefix
        self._codec = RecordCodec()
        self._save = client.register_script(_SAVE)
        self._insert = client.register_script(_INSERT)
        self._delete = client.register_script(_DELETE)
        self._purge = client.register_script(_PURGE)
        self._upgraded = False
        self._due_indexed = False
        self._calls: Groups[tuple[AsyncScript, list[Any]]] = Groups(self._pipelined)

    def _key(self, name: str) -> str:
        return f"{self._prefix}:rec:{name}"

    def _args(self, workflow: workflow_pb2.Workflow) -> list[Any]:
        encoded = self._codec.encode(workflow)
        due = due_at(workflow)
        return [
            self._prefix, workflow.name, encoded.data, encoded.codec, int(workflow.state),
            int(workflow.kind), tenant_of(workflow), _micros(position_of(workflow)[0]),
            _micros(int(workflow.update_time.ToNanoseconds())),
            encoded.result_hash.hex() if encoded.result_hash else "", encoded.result or b"",
            "" if due is None else _micros(due),
        ]  # fmt: skip

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a record with its index entries (one atomic script call, sent
        with the saves that arrive meanwhile: see the class docstring)."""
        await self._calls.call((self._save, self._args(workflow)))

    async def insert(self, workflow: workflow_pb2.Workflow) -> None:
        """Record a new workflow (as `save`); AlreadyExistsError when its name is taken."""
        if not await self._calls.call((self._insert, self._args(workflow))):
            raise AlreadyExistsError(
                f"{workflow.name} already exists", metadata={"name": workflow.name}
            )

    async def _pipelined(self, calls: list[tuple[AsyncScript, list[Any]]]) -> list[Any]:
        """The scripts' replies to `calls` (errors as values), loaded again and resent once
        where Redis no longer knew them (a restart, SCRIPT FLUSH)."""
        replies = await self._evalsha(calls)
        unknown = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unknown:
            for script in {id(calls[i][0]): calls[i][0] for i in unknown}.values():
                await self._redis.script_load(script.script)
            again = await self._evalsha([calls[i] for i in unknown])
            for i, reply in zip(unknown, again, strict=True):
                replies[i] = reply
        return replies

    async def _evalsha(self, calls: list[tuple[AsyncScript, list[Any]]]) -> list[Any]:
        """The scripts' replies to `calls`, sent in one pipeline (errors as values)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for script, args in calls:
                pipe.evalsha(script.sha, 0, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def save_many(self, workflows: Iterable[workflow_pb2.Workflow]) -> None:
        """Insert many records, pipelined 500 at a time (bulk loads and benchmarks)."""
        batch = list(workflows)
        for start in range(0, len(batch), 500):
            async with self._redis.pipeline(transaction=False) as pipe:
                for workflow in batch[start : start + 500]:
                    await self._save(keys=[], args=self._args(workflow), client=pipe)
                await pipe.execute()

    async def _records(self, names: Sequence[str]) -> list[_Read | None]:
        """The records (without their results) and their result hashes, in order; None for
        a missing one."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(self._key(name), "d", "c", "r")
            rows = await pipe.execute()
        return [
            None
            if data is None
            else (decode(as_bytes(data), int(codec), None), as_text(result or ""))
            for data, codec, result in rows
        ]

    async def _with_results(self, reads: Sequence[_Read]) -> list[workflow_pb2.Workflow]:
        """The records with their shared results attached."""
        wanted = [(workflow, digest) for workflow, digest in reads if digest]
        if wanted:
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, digest in wanted:
                    pipe.hget(f"{self._prefix}:res:{digest}", "d")
                results = await pipe.execute()
            for (workflow, _), data in zip(wanted, results, strict=True):
                if data is not None:
                    workflow.result.ParseFromString(zlib.decompress(as_bytes(data)))
        return [workflow for workflow, _ in reads]

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """The record called `name`, if any."""
        found = (await self._records([name]))[0]
        if found is None:
            return await self._legacy(name)
        return (await self._with_results([found]))[0]

    async def _legacy(self, name: str) -> workflow_pb2.Workflow | None:
        """A record written by a version before indexed records (a plain key), if any."""
        data = await self._redis.get(f"{self._prefix}:wf:{name}")
        return None if data is None else workflow_pb2.Workflow.FromString(as_bytes(data))

    def _index(self, found: Plan) -> str:
        p, t = self._prefix, found.tenant
        if found.state is not None:
            return f"{p}:z:ts:{t}:{found.state}"
        if found.kind is not None:
            return f"{p}:z:tk:{t}:{found.kind}"
        return f"{p}:z:t:{t}" if t is not None else f"{p}:z:all"

    async def list(self, where: Filter, *, limit: int, after: Position | None) -> Page:
        """Up to `limit` records, newest first ((µs, name) order), after the position; the
        filter's index answers, the rest is checked on at most REDIS_SCAN_LIMIT entries."""
        found = plan(where)
        if found.empty:
            return Page()
        key = self._index(found)
        top: int | None = None if found.high is None else _micros(found.high)
        if after is not None:
            top = _micros(after[0]) if top is None else min(top, _micros(after[0]))
        bottom = "-inf" if found.low is None else _micros(found.low)
        mark = None if after is None else (_micros(after[0]), after[1])
        # Scores are µs: records on a bound's µs are checked against the ns bound (slack).
        budget = limit + 65 if found.exact else REDIS_SCAN_LIMIT
        kept: list[_Read] = []
        examined = 0
        last: Position | None = None
        async for names in self._names(key, (top, bottom), mark, budget):
            reads = await self._records(names)
            for name, read in zip(names, reads, strict=True):
                examined += 1
                if read is None:
                    continue
                nanos = int(read[0].create_time.ToNanoseconds())
                last = (nanos, name)
                if _in_bounds(found, nanos) and matches(found.rest, read[0]):
                    kept.append(read)
                    if len(kept) > limit:
                        break
            if len(kept) > limit:
                break
        page = await self._with_results(kept[:limit])
        if len(kept) > limit:
            return Page(page, position_of(page[-1]))
        if examined >= budget and not found.exact and last is not None:
            return Page(page, last)
        return Page(page)

    async def _names(
        self,
        key: str,
        scores: tuple[int | None, int | str],
        mark: tuple[int, str] | None,
        budget: int,
    ) -> AsyncIterator[_Names]:
        """Names on the index `key` within the (top, bottom) scores and before the (µs, name)
        `mark`, newest first, in batches; at most `budget` of them."""
        top, bottom = scores
        offset = given = 0
        while given < budget:
            want = min(_BATCH, budget - given + 1)
            entries: Any = await self._redis.zrevrangebyscore(
                key, "+inf" if top is None else top, bottom,
                start=offset, num=want, withscores=True,
            )  # fmt: skip
            offset += len(entries)
            names = [
                as_text(member)
                for member, score in entries
                if mark is None or (int(score), as_text(member)) < mark
            ][: budget - given]
            given += len(names)
            if names:
                yield names
            if len(entries) < want:
                return

    async def upgrade(self) -> int:
        """Move records written by the layout before indexed records (a plain key per record,
        one `order` sorted set) into this one; how many. Safe to repeat and to run on several
        replicas at once (a record is re-saved, then its old key deleted)."""
        moved = 0
        async for key in self._redis.scan_iter(match=f"{self._prefix}:wf:*", count=1000):
            data = await self._redis.get(key)
            if data is not None:
                await self.save(workflow_pb2.Workflow.FromString(as_bytes(data)))
                moved += 1
            await self._redis.delete(key)
        await self._redis.delete(f"{self._prefix}:order")
        return moved

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """Records still PENDING or RUNNING (on any replica). The first call (recovery at
        start) upgrades records of the older layout first (`upgrade`)."""
        if not self._upgraded:
            self._upgraded = True
            await self.upgrade()
        names = [as_text(n) for n in await self._redis.smembers(f"{self._prefix}:unfinished")]
        return await self._with_results([r for r in await self._records(names) if r is not None])

    async def due(
        self, before_ns: int, *, limit: int, after: Position | None = None
    ) -> Sequence[workflow_pb2.Workflow]:
        """Records with an open webhook delivery due by `before_ns`, soonest first ((µs, name)
        order), after the position. The first call indexes the open deliveries of records
        saved before this index existed (`index_due`)."""
        if not self._due_indexed:
            self._due_indexed = True
            await self.index_due()
        mark = None if after is None else (_micros(after[0]), after[1])
        entries: Any = await self._redis.zrangebyscore(
            f"{self._prefix}:due", "-inf" if mark is None else mark[0], _micros(before_ns),
            start=0, num=2 * limit, withscores=True,
        )  # fmt: skip
        names = [
            as_text(member)
            for member, score in entries
            if mark is None or (int(score), as_text(member)) > mark
        ][:limit]
        return await self._with_results([r for r in await self._records(names) if r is not None])

    async def index_due(self) -> int:
        """Index the open deliveries of finished records saved before the `due` index (those
        that ended within a week); how many. Done once per store (a marker key), safe to
        repeat and to run on several replicas at once."""
        marker = f"{self._prefix}:due:indexed"
        if await self._redis.exists(marker):
            return 0
        since = _micros(time.time_ns()) - _LONGEST_DELIVERY_US
        names = [as_text(n) for n in await self._redis.zrangebyscore(
            f"{self._prefix}:finished", since, "+inf"
        )]  # fmt: skip
        found: dict[str, int] = {}
        for start in range(0, len(names), _BATCH):
            for read in await self._records(names[start : start + _BATCH]):
                due = None if read is None else due_at(read[0])
                if read is not None and due is not None:
                    found[read[0].name] = _micros(due)
        if found:
            await self._redis.zadd(f"{self._prefix}:due", found)
        await self._redis.set(marker, 1)
        return len(found)

    async def delete(self, name: str) -> bool:
        """Delete a finished record, its index entries and its share of the result."""
        return bool(await self._delete(keys=[], args=[self._prefix, name]))

    async def purge(self, before_ns: int, *, limit: int) -> Sequence[str]:
        """Delete up to `limit` finished records last updated before `before_ns` (one
        script call)."""
        names = await self._purge(keys=[], args=[self._prefix, _micros(before_ns), limit])
        return [as_text(name) for name in names]

    async def close(self) -> None:
        """Wait for the saves on their way (each is acknowledged before it returns)."""
        await self._calls.close()


def _in_bounds(found: Plan, nanos: int) -> bool:
    """Whether a create time is within the plan's bounds (scores are coarser: µs)."""
    return (found.low is None or nanos >= found.low) and (found.high is None or nanos <= found.high)


# One atomic bucket update: refill by elapsed time, then spend a token or say how long to wait.
_TAKE = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or ARGV[2])
local stamp = tonumber(redis.call('HGET', KEYS[1], 's') or ARGV[3])
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class RedisTokenBuckets:
    """Token buckets shared by every replica (one Redis hash per caller, updated by a Lua
    script so concurrent replicas never double-spend)."""

    def __init__(
        self, client: aioredis.Redis, *, rate: float, burst: int, prefix: str = "ponder:gateway"
    ) -> None:
        self._redis = client
        self._rate = rate
        self._burst = burst
        self._prefix = prefix
        self._script = client.register_script(_TAKE)

    async def take(self, caller: str) -> float:
        """Spend one token; 0, or the seconds until one is free."""
        wait = await self._script(
            keys=[f"{self._prefix}:bucket:{caller}"],
            args=[self._rate, self._burst, time.time()],
        )
        return float(wait)
