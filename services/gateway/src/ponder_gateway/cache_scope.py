"""The cache scope of a call: `global` (every caller shares answers built from public sources),
or with PONDER_GATEWAY_CACHE_SCOPE=per-tenant the caller's tenant (principals.py), or with
per-key the caller's API-key hash, so that one tenant (or key) never receives an answer another
one's workflow produced."""

from __future__ import annotations

from typing import Any, Literal

import grpc

from ponder_gateway.access import hash_key
from ponder_gateway.principals import current


CacheScopeMode = Literal["global", "per-tenant", "per-key"]
GLOBAL = "global"
ANONYMOUS = "anonymous"  # per-key scope of callers without a key (when anonymous calls are allowed)


def cache_scope(mode: CacheScopeMode, context: grpc.aio.ServicerContext[Any, Any] | None) -> str:
    """`global`, `tenant-<tenant>`, or `key-<16 hex digits of the key's SHA-256>` (`anonymous`
    without a key). The key itself was checked by the access guard before the call got here."""
    if mode == GLOBAL or context is None:
        return GLOBAL
    if mode == "per-tenant":
        return f"tenant-{current().tenant}"
    for name, value in context.invocation_metadata() or ():
        if name == "authorization":
            header = value if isinstance(value, str) else value.decode()
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return f"key-{hash_key(token.strip())[:16]}"
    return ANONYMOUS
