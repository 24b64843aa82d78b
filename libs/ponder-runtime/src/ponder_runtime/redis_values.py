"""Values in Redis replies (bytes, or str and int from a decoding client) as text or bytes."""

from __future__ import annotations


def as_text(value: object) -> str:
    """A reply value as text (bytes decoded as UTF-8)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def as_bytes(value: object) -> bytes:
    """A reply value as bytes (text encoded as UTF-8)."""
    return value if isinstance(value, bytes) else str(value).encode()
