"""Cancel a request's call when its client disconnects (as a gRPC cancel would)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ponder_rest.errors import ClientGoneError, HttpError, http_status
from ponder_rest.exchange import Receive
from ponder_runtime.local import LocalCallError


# The client is watched from this long into a call on: most answers are sent before then,
# and a watcher task per request would cost more than the answer itself.
WATCH_AFTER_SECONDS = 0.05


async def until_disconnect(call: Awaitable[Any], receive: Receive) -> Any:
    """Await `call`, cancelling it when the client goes away (ClientGoneError then); errors
    of the call become HttpErrors."""
    task = asyncio.current_task()
    assert task is not None  # called from a request's task
    watch = _Watch(receive, task)
    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_SECONDS, watch.start)
    try:
        return await call
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task.uncancel()
        raise ClientGoneError from None
    except LocalCallError as exc:
        raise HttpError(http_status(exc.status.code), exc.status) from None
    finally:
        timer.cancel()
        watch.stop()


class _Watch:
    """Cancels a request's task when its client disconnects (see until_disconnect)."""

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._task = task
        self._watcher: asyncio.Task[None] | None = None
        self.gone = False

    def start(self) -> None:
        """Begin watching."""
        self._watcher = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        """Stop watching (the call is over)."""
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self._task.cancel()
