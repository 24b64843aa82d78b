"""Integrity of the semantic cache: the gateway signs every workflow result it stores
(HMAC-SHA256 with a deployment secret) and serves only results whose signature verifies, so
nobody who reaches the embedding service's StoreCache can plant an answer.

A signed payload is `MAGIC key_id NUL mac(32 bytes) body`; the MAC covers the key id, the
cache namespace, the entry's text, the payload type and the body (length-prefixed), so a
signed result cannot be moved to another topic or namespace either. Rotation: one signing key
(PONDER_GATEWAY_CACHE_SIGNING_KEY) and any number of verification keys (the signing key plus
PONDER_GATEWAY_CACHE_VERIFICATION_KEYS), each `<key id>:<secret>`; the key id travels in the
payload, so entries signed with an older key verify until that key is dropped."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass


MAGIC = b"ponder-hmac-v1\x00"
_MAC_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
MIN_SECRET_CHARS = 16


class SignatureError(Exception):
    """A cached payload that must not be served; the message says why (never a secret)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One HMAC key and the id written beside its signatures."""

    key_id: str
    secret: bytes

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """`<key id>:<secret>`; ValueError naming what is wrong (not the secret)."""
        key_id, sep, secret = text.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ValueError("a cache signing key is `<key id>:<secret>`, key id [A-Za-z0-9._-]")
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(
                f"the secret of cache signing key {key_id!r} is shorter than "
                f"{MIN_SECRET_CHARS} characters"
            )
        return cls(key_id, secret.encode())

    @classmethod
    def ephemeral(cls) -> SigningKey:
        """A random key for this process only (when none is configured)."""
        return cls(f"ephemeral-{secrets.token_hex(4)}", secrets.token_bytes(32))


def _mac(key: SigningKey, namespace: str, text: str, payload_type: str, body: bytes) -> bytes:
    mac = hmac.new(key.secret, digestmod=hashlib.sha256)
    parts = (MAGIC, key.key_id.encode(), namespace.encode(), text.encode(), payload_type.encode())
    for part in (*parts, body):
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.digest()


class PayloadSigner:
    """Signs with one key, verifies with any of the known keys."""

    def __init__(self, signing: SigningKey, verification: Iterable[SigningKey] = ()) -> None:
        self._signing = signing
        self._keys = {key.key_id: key for key in (*verification, signing)}

    @property
    def key_id(self) -> str:
        """The id of the key new signatures are made with."""
        return self._signing.key_id

    def seal(self, namespace: str, text: str, payload_type: str, body: bytes) -> bytes:
        """`body` with its signature in front."""
        key = self._signing
        mac = _mac(key, namespace, text, payload_type, body)
        return MAGIC + key.key_id.encode() + b"\x00" + mac + body

    def open(self, namespace: str, text: str, payload_type: str, payload: bytes) -> bytes:
        """The body of a signed payload; SignatureError when it is unsigned, signed with an
        unknown key, or its signature does not match."""
        if not payload.startswith(MAGIC):
            raise SignatureError("unsigned payload")
        key_id, sep, rest = payload[len(MAGIC) :].partition(b"\x00")
        if not sep or len(rest) < _MAC_BYTES:
            raise SignatureError("malformed signature")
        key = self._keys.get(key_id.decode(errors="replace"))
        if key is None:
            raise SignatureError("signed with an unknown key id")
        mac, body = rest[:_MAC_BYTES], rest[_MAC_BYTES:]
        if not hmac.compare_digest(mac, _mac(key, namespace, text, payload_type, body)):
            raise SignatureError("signature does not match")
        return body
