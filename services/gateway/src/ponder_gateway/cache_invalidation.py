"""Emptying every gateway replica's first-level cache (cache.RecentAnswers) when the semantic
cache is invalidated through one of them.

The replica that forwards an InvalidateCache empties its own at once and, with Redis
configured (the state the replicas already share), publishes on a channel every replica
listens to; the others empty theirs when the message arrives. Pub/sub delivers at most once,
so a replica empties its memory whenever it (re)subscribes: it may have missed a message
while disconnected. What no replica sees (an InvalidateCache sent to the embedding service
directly, a message lost while Redis was away) is bounded by the memo's own age limit,
PONDER_GATEWAY_CACHE_RECENT_SECONDS."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

from ponder_gateway.redis_outage import REDIS_DOWN
from ponder_runtime.tasks import cancel_and_wait


logger = logging.getLogger(__name__)

CHANNEL = "ponder:gateway:cache-invalidated"
_POLL_SECONDS = 1.0  # how long one wait for a message lasts (then the loop checks again)


class ReplicaInvalidation:
    """Tells this replica (`forget`) and, through Redis, the others to forget."""

    def __init__(
        self,
        forget: Callable[[], None],
        client: aioredis.Redis | None,
        *,
        retry_seconds: float = 1.0,
    ) -> None:
        self._forget = forget
        self._client = client
        self._retry = retry_seconds
        self._me = uuid.uuid4().hex.encode()  # its own messages need no second forgetting
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def invalidated(self) -> None:
        """An invalidation went through this replica: forget here, then tell the others
        (a warning when Redis cannot take it: they forget within their age limit)."""
        self._forget()
        if self._client is None:
            return
        try:
            await self._client.publish(CHANNEL, self._me)
        except REDIS_DOWN as exc:
            logger.warning(
                "cache invalidation not announced to the other replicas: Redis is unreachable",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )

    def start(self) -> None:
        """Listen for the other replicas' invalidations (with Redis only)."""
        if self._client is not None and self._task is None:
            self._task = asyncio.create_task(self._listen(self._client), name="cache-invalidation")

    async def subscribed(self) -> None:
        """Wait until the listener is subscribed (tests; start-up)."""
        await self._subscribed.wait()

    async def stop(self) -> None:
        """Stop listening."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _listen(self, client: aioredis.Redis) -> None:
        down = False
        while True:
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._forget()  # what was published while not subscribed is unknown
                    self._subscribed.set()
                    if down:
                        logger.info("cache invalidations from other replicas heard again")
                    down = False
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=_POLL_SECONDS
                        )
                        if message is not None and message.get("data") != self._me:
                            self._forget()
            except REDIS_DOWN as exc:
                self._subscribed.clear()
                if not down:
                    logger.warning(
                        "cache invalidations from other replicas not heard: Redis is "
                        "unreachable (the first-level cache keeps its age limit)",
                        extra={"error": f"{type(exc).__name__}: {exc}"},
                    )
                down = True
                await asyncio.sleep(self._retry)
