"""Calls sent in groups: those that arrive while a group is on its way go together in the next
one (a group commit on SQLite, a pipeline on Redis), each caller answered on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar


T = TypeVar("T")
# Sends a group; one reply per call, in order, an exception as the reply of a call that failed.
Send = Callable[[list[T]], Awaitable[Sequence[Any]]]


class Groups(Generic[T]):
    """Sends calls with `send`, group after group (see the module docstring). A `send` that
    raises fails every call of its group with that error."""

    def __init__(self, send: Send[T]) -> None:
        self._send = send
        self._pending: list[tuple[T, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def call(self, item: T) -> Any:
        """`item`'s reply, once its group was sent (its error raised)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                replies: Sequence[Any] = await self._send([item for item, _ in batch])
            except Exception as exc:  # the whole group failed (a connection, a closed thread)
                replies = [exc] * len(batch)
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def close(self) -> None:
        """Wait for the groups on their way."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
