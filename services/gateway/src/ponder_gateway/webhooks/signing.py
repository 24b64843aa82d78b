"""Webhook signatures, Stripe style: `Ponder-Signature: t=<unix seconds>,v1=<hex>`, the hex
being HMAC-SHA256 with the secret over `"<t>." + body` (one `v1` per key while a secret
rotates). A receiver recomputes it, compares in constant time and refuses old timestamps."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


SIGNATURE_HEADER = "Ponder-Signature"
EVENT_ID_HEADER = "Ponder-Event-Id"
EVENT_TYPE_HEADER = "Ponder-Event-Type"
ATTEMPT_HEADER = "Ponder-Delivery-Attempt"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>." + body`."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(keys: Sequence[bytes], timestamp: int, body: bytes) -> str:
    """The Ponder-Signature header value: the timestamp and one signature per key."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(k, timestamp, body)}" for k in keys)])


def verify(
    header: str,
    body: bytes,
    secret: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` signs `body` with `secret` at a time within `tolerance` of `now`."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
