"""Exact repeats of a synchronous workflow request, answered with the workflow that answered
them a moment ago.

A `Run*Workflow` request byte-for-byte identical to one that succeeded less than `seconds` ago
(same method, same topic and parameters, the cache allowed) gets the same reply again: the same
recorded workflow, its name, result and trace id, with header metadata `x-ponder-replay-age`
(seconds since that workflow finished) saying so. No new workflow is created or recorded, the
way an HTTP cache answers within its max-age. Callers still pass authentication and the rate
limit; `cache_policy` REFRESH or BYPASS never replays, and a REFRESH run drops the replies kept
for its topic, so the next request gets the new answer. A reply that depends on the local
library is replayed only while the semantic cache's first level, which follows the library's
version, still answers its question (a document deleted or added ends its replays).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from cachetools import TTLCache
from google.protobuf.message import Message
from opentelemetry.metrics import Meter

from ponder_gateway.metrics import CACHE_LOOKUPS, CACHE_RESULT, no_op_meter


REPLAY_AGE_KEY = "x-ponder-replay-age"

Reply = TypeVar("Reply", bound=Message)
StillValid = Callable[[], Awaitable[bool]]  # whether a kept reply may still be replayed


class ReplayMemo(Generic[Reply]):
    """Recent successful replies by request (bounded in size and age; see module docstring):
    a cachetools TTLCache, so an entry goes `seconds` after it was kept, or earlier when it is
    the least recently used of a full memo."""

    def __init__(
        self,
        *,
        seconds: float,
        max_entries: int,
        meter: Meter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_entries if seconds > 0 else 0
        self._clock = clock
        # request key -> (when kept, reply, what it answers: the cache namespace and topic,
        # and the check a reply that depends on more than the request must pass)
        self._entries: TTLCache[tuple[str, bytes], tuple[float, Reply, str, StillValid | None]] = (
            TTLCache(max(self._max, 1), ttl=max(seconds, 1e-9), timer=clock)
        )
        self._lookups = (meter or no_op_meter()).create_counter(
            CACHE_LOOKUPS, unit="{lookup}", description="Cache lookups by result."
        )

    @property
    def enabled(self) -> bool:
        """Whether replies are kept at all (`seconds` and `max_entries` above 0)."""
        return self._max > 0

    @staticmethod
    def key(request: Message) -> tuple[str, bytes]:
        """What identifies a request: its type and deterministic bytes."""
        return request.DESCRIPTOR.full_name, request.SerializeToString(deterministic=True)

    async def get(self, key: tuple[str, bytes]) -> tuple[Reply, float] | None:
        """The reply kept for `key` and its age in seconds, if still fresh (and still valid,
        for one kept with a check; one that fails it is dropped)."""
        if not self._max:
            return None
        found = self._entries.get(key)
        if found is None:
            return None
        if found[3] is not None and not await found[3]():
            self._entries.pop(key, None)
            return None
        self._lookups.add(1, {CACHE_RESULT: "replay"})
        return found[1], self._clock() - found[0]

    def put(
        self,
        key: tuple[str, bytes],
        reply: Reply,
        answers: str,
        still_valid: StillValid | None = None,
    ) -> None:
        """Keep a successful reply to the question `answers` (the oldest goes when full),
        replayed only while `still_valid` says so when given; nothing when turned off. The
        reply is shared by every replay: nobody may change it afterwards."""
        if not self._max:
            return
        self._entries[key] = (self._clock(), reply, answers, still_valid)

    def forget(self, answers: str) -> None:
        """Drop the replies to the question `answers` (its cached answer was refreshed)."""
        for key, entry in list(self._entries.items()):
            if entry[2] == answers:
                del self._entries[key]
