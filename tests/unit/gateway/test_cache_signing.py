"""Signed cache payloads: round trip, key rotation, and every kind of tampering refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ponder_gateway.cache_signing import MAGIC, PayloadSigner, SignatureError, SigningKey


OLD = SigningKey.parse("k1:old-secret-0123456789abcdef")
NEW = SigningKey.parse("k2:new-secret-0123456789abcdef")
Args = tuple[str, str, str]  # namespace, text, payload type
Change = Callable[[bytes, Args], tuple[bytes, Args]]
ARGS: Args = ("workflow/reflection/v1/abc", "a topic", "ponder.workflow.v1.Workflow")


def test_a_signed_payload_opens_to_its_body() -> None:
    """seal then open gives the body back; the key id travels in the payload."""
    signer = PayloadSigner(NEW)
    sealed = signer.seal(*ARGS, b"body")
    assert sealed.startswith(MAGIC + b"k2\x00")
    assert signer.open(*ARGS, sealed) == b"body"


def test_rotation_reads_old_entries_and_signs_with_the_new_key() -> None:
    """With k2 signing and k1 kept for verification, k1's entries still open; once k1 is
    dropped they are refused as signed with an unknown key."""
    old_entry = PayloadSigner(OLD).seal(*ARGS, b"old")
    rotating = PayloadSigner(NEW, [OLD])
    assert rotating.open(*ARGS, old_entry) == b"old"
    assert rotating.seal(*ARGS, b"x").startswith(MAGIC + b"k2\x00")
    with pytest.raises(SignatureError, match="unknown key id"):
        PayloadSigner(NEW).open(*ARGS, old_entry)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda p, a: (p + b"!", a), "does not match"),  # body changed
        (lambda p, a: (p, ("workflow/other/v1/abc", a[1], a[2])), "does not match"),  # moved
        (lambda p, a: (p, (a[0], "another topic", a[2])), "does not match"),
        (lambda p, a: (p[len(MAGIC) + 3 :], a), "unsigned"),  # signature cut off
        (lambda p, a: (MAGIC + b"k2", a), "malformed"),
        (lambda p, a: (p.replace(b"k2\x00", b"k9\x00", 1), a), "unknown key id"),
    ],
    ids=["body", "namespace", "text", "stripped", "truncated", "key-id"],
)
def test_tampered_payloads_are_refused(change: Change, reason: str) -> None:
    """Any change to the body, the namespace or text it was stored under, or the signature
    itself raises SignatureError saying why."""
    signer = PayloadSigner(NEW)
    payload, (space, text, payload_type) = change(signer.seal(*ARGS, b"body"), ARGS)
    with pytest.raises(SignatureError, match=reason):
        signer.open(space, text, payload_type, payload)


def test_bad_keys_are_refused_without_echoing_the_secret() -> None:
    """A key without an id or with a short secret is a ValueError that never shows the
    secret."""
    for text in ("no-colon-here-at-all-0123456789", "k1:short", "bad id:0123456789abcdef0"):
        with pytest.raises(ValueError, match="cache signing key") as caught:
            SigningKey.parse(text)
        assert "short" not in str(caught.value).replace("shorter", "")
        assert "0123456789" not in str(caught.value)
