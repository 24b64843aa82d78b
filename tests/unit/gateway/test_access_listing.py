"""Token buckets, API-key files and page tokens."""

from __future__ import annotations

import pytest

from ponder_gateway.access import TokenBuckets, hash_key
from ponder_gateway.listing import read_token, token_at
from ponder_gateway.principals import read_keys
from ponder_runtime import InvalidArgumentError


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTokenBuckets:
    """TokenBuckets."""

    async def test_burst_then_refill(self):
        """A caller spends its burst, waits the announced time, and gets one more."""
        clock = Clock()
        buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
        assert [await buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
        wait = await buckets.take("a")
        assert wait == pytest.approx(0.5)
        clock.now += wait
        assert await buckets.take("a") == 0.0

    async def test_callers_are_independent_and_bounded(self):
        """Each caller has its own bucket; the least recent are forgotten beyond the bound."""
        clock = Clock()
        buckets = TokenBuckets(rate=1.0, burst=1, max_callers=2, clock=clock)
        assert await buckets.take("a") == 0.0
        assert await buckets.take("b") == 0.0
        assert await buckets.take("a") > 0
        assert await buckets.take("c") == 0.0  # evicts b (least recently used)
        assert await buckets.take("b") == 0.0  # a fresh bucket again


def test_key_hashes_from_settings_and_file(tmp_path):
    """Hashes come from settings and from a file with comments and name prefixes."""
    path = tmp_path / "keys"
    path.write_text(f"# keys\nalice:{hash_key('a').upper()}\n\n{hash_key('b')}  # bob\n")
    hashes = frozenset(read_keys(path, [hash_key("c")]))
    assert hashes == {hash_key("a"), hash_key("b"), hash_key("c")}


class TestListing:
    """Page tokens of ListWorkflows (filters: test_filters.py)."""

    def test_tokens_round_trip_and_are_tied_to_their_filter(self):
        """A token resumes after its workflow; garbage or another filter's token is refused."""
        token = token_at((123, "workflows/abc"), "state = RUNNING")
        assert read_token(token, "state = RUNNING") == (123, "workflows/abc")
        assert read_token("", "") is None
        for bad, text in ((token, "state = FAILED"), ("!!!", "state = RUNNING")):
            with pytest.raises(InvalidArgumentError):
                read_token(bad, text)
