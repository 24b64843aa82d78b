"""Who may call the gateway and how often: API keys (only their SHA-256 hashes are kept) sent
as `authorization: Bearer <key>`, and a token bucket per caller (per key, or per peer address
when anonymous access is allowed; calls refused for a missing or wrong key spend their peer's
bucket too, so guessing keys is rate limited like any call)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from opentelemetry.metrics import Meter

from ponder_gateway.metrics import RATE_LIMIT_REJECTIONS, RPC_METHOD, no_op_meter
from ponder_runtime import PonderError, ResourceExhaustedError


class UnauthenticatedError(PonderError):
    """No valid API key."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def read_key_hashes(path: Path | None, inline: Iterable[str]) -> frozenset[str]:
    """Hashes from a file (one per line; `#` comments and an optional `name:` prefix allowed)
    and from settings."""
    hashes = {h.strip().lower() for h in inline if h.strip()}
    if path is not None:
        for raw in path.read_text().splitlines():
            entry = raw.split("#", 1)[0].strip()
            if entry:
                hashes.add(entry.rsplit(":", 1)[-1].strip().lower())
    return frozenset(hashes)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """`rate` requests per second with bursts of `burst`, per caller (LRU-bounded)."""

    def __init__(
        self, *, rate: float, burst: int, max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._rate = rate
        self._burst = burst
        self._max = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    async def take(self, caller: str) -> float:
        """Spend one token; return 0, or the seconds until a token is free (rejected)."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(float(self._burst), now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(caller)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate


class Buckets(Protocol):
    """Per-caller token buckets, in memory or shared through Redis."""

    async def take(self, caller: str) -> float:
        """Spend one token; 0, or the seconds until one is free."""
        ...


class AccessControl:
    """The guard run before every gateway RPC (health and reflection stay open)."""

    def __init__(
        self,
        key_hashes: frozenset[str],
        *,
        allow_anonymous: bool,
        buckets: Buckets | None,
        meter: Meter | None = None,
    ) -> None:
        self._hashes = key_hashes
        self._anonymous = allow_anonymous
        self._buckets = buckets
        self._rejections = (meter or no_op_meter()).create_counter(
            RATE_LIMIT_REJECTIONS, unit="{request}", description="Calls refused by rate limits."
        )

    def caller(self, context: grpc.aio.ServicerContext) -> str:
        """The caller's identity ("key:<hash prefix>" or "peer:<address>"); raises
        UnauthenticatedError for a missing or unknown key (the key is never logged)."""
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode()
        if header:
            scheme, _, token = header.partition(" ")
            digest = hash_key(token.strip()) if scheme.lower() == "bearer" else ""
            if digest and any(hmac.compare_digest(digest, known) for known in self._hashes):
                return f"key:{digest[:12]}"
            raise UnauthenticatedError("the API key is not valid")
        if self._anonymous:
            return _peer(context)
        raise UnauthenticatedError("an API key is required: send `authorization: Bearer <key>`")

    async def __call__(self, context: grpc.aio.ServicerContext, method: str) -> None:
        """Authenticate, then spend a token of the caller's bucket. A call refused for its key
        spends a token of its peer's bucket first: once that is empty, attempts are
        RESOURCE_EXHAUSTED, so keys cannot be guessed (nor the gateway flooded) at line rate."""
        try:
            caller = self.caller(context)
        except UnauthenticatedError:
            await self._spend(_peer(context), method)
            raise
        await self._spend(caller, method)

    async def _spend(self, caller: str, method: str) -> None:
        if self._buckets is None:
            return
        wait = await self._buckets.take(caller)
        if wait > 0:
            self._rejections.add(1, {RPC_METHOD: method})
            raise ResourceExhaustedError(
                f"rate limit exceeded for {caller}; retry in {wait:.2f}s",
                retry_after_seconds=wait,
                metadata={"caller": caller},
            )


def _peer(context: grpc.aio.ServicerContext) -> str:
    """An anonymous caller's identity: its address without the port ("peer:ipv4:10.0.0.7"),
    the TCP peer's (forwarding headers are not trusted)."""
    return f"peer:{(context.peer() or '').rsplit(':', 1)[0]}"
