"""The daily spend of API keys in Redis, shared by every gateway replica: one hash per key and
UTC day (tokens, micro-USD), incremented atomically by a Lua script that also sets the
hash's expiry (two days), so old days clean themselves up."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ponder_gateway.budgets import Spend


_ADD = """
local tokens = redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'micro_usd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return tokens
"""
_KEEP_SECONDS = 2 * 24 * 3600


class RedisLedger:
    """SpendLedger in Redis."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "ponder:gateway") -> None:
        self._redis = client
        self._prefix = prefix
        self._add: Any = client.register_script(_ADD)

    def _key(self, holder: str, day: str) -> str:
        return f"{self._prefix}:spend:{day}:{holder}"

    async def spent(self, holder: str, day: str) -> Spend:
        """What `holder` spent on `day`."""
        tokens, micro_usd = await self._redis.hmget(self._key(holder, day), "tokens", "micro_usd")
        return Spend(int(tokens or 0), int(micro_usd or 0))

    async def add(self, holder: str, day: str, spend: Spend) -> None:
        """Count `spend` for `holder` on `day` (one atomic script)."""
        await self._add(
            keys=[self._key(holder, day)], args=[spend.tokens, spend.micro_usd, _KEEP_SECONDS]
        )
