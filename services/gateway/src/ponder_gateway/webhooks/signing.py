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


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>." + body`."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(keys: Sequence[bytes], timestamp: int, body: bytes) -> str:
    """The Ponder-Signature header value: the timestamp and one signature per key."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(k, timestamp, body)}" for k in keys)])
