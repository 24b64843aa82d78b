"""Who may call the gateway, what they may do and how often: API keys (only their SHA-256
hashes are kept) sent as `authorization: Bearer <key>` map to principals with scopes
(principals.py); each method needs its scopes (METHOD_SCOPES); token buckets per caller (per
key, or per peer address for anonymous calls) and per tenant (all keys of a tenant together).
Calls refused for a missing or wrong key spend their peer's bucket too, so guessing keys is
rate limited like any call. Every refused call writes one audit log line (logger
`ponder_gateway.audit`: principal, tenant, method, reason, trace id; never the key)."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from cachetools import LRUCache
from opentelemetry import trace
from opentelemetry.metrics import Meter

from ponder_gateway.metrics import RATE_LIMIT_REJECTIONS, RPC_METHOD, no_op_meter
from ponder_gateway.principals import (
    KeyEntry,
    Principal,
    Scope,
    hash_key,
    set_current,
)
from ponder_runtime import (
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
)


__all__ = [
    "AccessControl",
    "Buckets",
    "TokenBuckets",
    "UnauthenticatedError",
    "hash_key",
]

audit = logging.getLogger("ponder_gateway.audit")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """`rate` requests per second with bursts of `burst`, per caller; at most `max_callers`
    buckets (cachetools LRU: the least recently used goes first)."""

    def __init__(
        self, *, rate: float, burst: int, max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: LRUCache[str, _Bucket] = LRUCache(max_callers)

    async def take(self, caller: str) -> float:
        """Spend one token; return 0, or the seconds until a token is free (rejected)."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(float(self._burst), now)
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


@dataclass(frozen=True, slots=True)
class Anonymous:
    """Calls without a key: refused (None) or this tenant with these scopes."""

    tenant: str
    scopes: frozenset[Scope]


class AccessControl:
    """The guard run before every gateway RPC (health and reflection stay open)."""

    def __init__(
        self,
        keys: Mapping[str, KeyEntry],
        *,
        anonymous: Anonymous | None,
        buckets: Buckets | None,
        tenant_buckets: Buckets | None = None,
        meter: Meter | None = None,
    ) -> None:
        self._keys = dict(keys)
        self._anonymous = anonymous
        self._buckets = buckets
        self._tenant_buckets = tenant_buckets
        self._rejections = (meter or no_op_meter()).create_counter(
            RATE_LIMIT_REJECTIONS, unit="{request}", description="Calls refused by rate limits."
        )

    def principal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        """The caller's principal; raises UnauthenticatedError for a missing or unknown key,
        or for more than one authorization header (whose key would count is a guess every
        reader of the headers must make alike; the key is never logged)."""
        headers = [
            value if isinstance(value, str) else value.decode()
            for key, value in context.invocation_metadata() or ()
            if key == "authorization"
        ]
        if len(headers) > 1:
            raise UnauthenticatedError(
                f"send one authorization header, not {len(headers)}: `authorization: Bearer <key>`"
            )
        header = headers[0] if headers else ""
        if header:
            scheme, _, token = header.partition(" ")
            digest = hash_key(token.strip()) if scheme.lower() == "bearer" else ""
            entry = self._find(digest) if digest else None
            if entry is not None:
                return Principal(
                    entry.tenant,
                    entry.key_id,
                    entry.scopes,
                    f"key:{digest[:12]}",
                    daily_tokens=entry.daily_tokens,
                    daily_cost_usd=entry.daily_cost_usd,
                )
            raise UnauthenticatedError("the API key is not valid")
        if self._anonymous is not None:
            anonymous = self._anonymous
            return Principal(
                anonymous.tenant, "anonymous", anonymous.scopes, _peer(context), anonymous=True
            )
        raise UnauthenticatedError("an API key is required: send `authorization: Bearer <key>`")

    def _find(self, digest: str) -> KeyEntry | None:
        """The entry of `digest`, compared in constant time with every known hash."""
        found = None
        for known, entry in self._keys.items():
            if hmac.compare_digest(digest, known):
                found = entry
        return found

    async def __call__(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        """Authenticate, spend a token of the caller's bucket and of its tenant's, then check
        the method's scopes. A call refused for its key spends a token of its peer's bucket
        first: once that is empty, attempts are RESOURCE_EXHAUSTED, so keys cannot be guessed
        (nor the gateway flooded) at line rate."""
        try:
            principal = self.principal(context)
        except UnauthenticatedError as exc:
            _audit(None, _peer(context), method, exc.message)
            await self._take(self._buckets, _peer(context), method)
            raise
        await self._take(self._buckets, principal.caller, method)
        if not principal.anonymous:  # anonymous callers are limited per peer address only
            await self._take(self._tenant_buckets, f"tenant:{principal.tenant}", method)
        missing = principal.missing(method)
        if missing is None or missing:
            reason = (
                "no scope is defined for this method"
                if missing is None
                else "missing scope " + ", ".join(sorted(missing))
            )
            _audit(principal, _peer(context), method, reason)
            raise PermissionDeniedError(
                f"{method}: {reason}", metadata={"principal": principal.key_id}
            )
        set_current(principal)

    async def _take(self, buckets: Buckets | None, caller: str, method: str) -> None:
        """Spend a token of `caller`'s bucket (nothing when that limit is off)."""
        if buckets is None:
            return
        wait = await buckets.take(caller)
        if wait > 0:
            self._rejections.add(1, {RPC_METHOD: method})
            raise ResourceExhaustedError(
                f"rate limit exceeded for {caller}; retry in {wait:.2f}s",
                retry_after_seconds=wait,
                metadata={"caller": caller},
            )


def _audit(principal: Principal | None, peer: str, method: str, reason: str) -> None:
    """One line per refused call: who, what, why, and the trace to find it by."""
    span = trace.get_current_span().get_span_context()
    audit.warning(
        "access denied",
        extra={
            "principal": principal.key_id if principal else "unauthenticated",
            "tenant": principal.tenant if principal else "",
            "peer": peer,
            "rpc_method": method,
            "reason": reason,
            "trace_id": format(span.trace_id, "032x") if span.is_valid else "",
        },
    )


def _peer(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """An anonymous caller's identity: its address without the port ("peer:ipv4:10.0.0.7"),
    the TCP peer's (forwarding headers are not trusted)."""
    return f"peer:{(context.peer() or '').rsplit(':', 1)[0]}"
