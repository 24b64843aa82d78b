"""Random ids read from the OS in chunks: never repeated, well formed, across refills."""

from __future__ import annotations

import re
import uuid

from ponder_runtime.ids import RandomIds


def test_ids_never_repeat_across_refills():
    """Ten thousand UUIDs from a 64-byte chunk (a refill every four) are all distinct."""
    ids = RandomIds(chunk=64)
    made = [ids.uuid4() for _ in range(10_000)]
    assert len(set(made)) == len(made)


def test_uuid4_is_a_canonical_version_4_uuid():
    """Each of two thousand texts parses back to itself, version 4, RFC 4122 variant; the
    variant's digit takes each of its four values (8, 9, a, b)."""
    made = [RandomIds().uuid4() for _ in range(2000)]
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert {text[19] for text in made} == set("89ab")


def test_hex_ids_have_the_asked_size():
    """`hex(n)` is 2n lower-case hex digits; a request larger than the chunk still works."""
    ids = RandomIds(chunk=8)
    assert re.fullmatch(r"[0-9a-f]{32}", ids.hex())
    assert re.fullmatch(r"[0-9a-f]{64}", ids.hex(32))
    assert ids.hex() != ids.hex()
