"""The cache scope of a call: `global` (every caller shares answers built from public sources)
or, with PONDER_GATEWAY_CACHE_SCOPE=per-key, the caller's API-key hash, so that one tenant
never receives an answer another tenant's workflow produced."""

from __future__ import annotations

from typing import Literal

import grpc

from ponder_gateway.access import hash_key


CacheScopeMode = Literal["global", "per-key"]
GLOBAL = "global"
ANONYMOUS = "anonymous"  # per-key scope of callers without a key (when anonymous calls are allowed)


def cache_scope(mode: CacheScopeMode, context: grpc.aio.ServicerContext | None) -> str:
    """`global`, or `key-<16 hex digits of the key's SHA-256>` (`anonymous` without a key).
    The key itself was checked by the access guard before the call got here."""
    if mode == GLOBAL or context is None:
        return GLOBAL
    for name, value in context.invocation_metadata() or ():
        if name == "authorization":
            header = value if isinstance(value, str) else value.decode()
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return f"key-{hash_key(token.strip())[:16]}"
    return ANONYMOUS
