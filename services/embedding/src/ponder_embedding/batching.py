"""Dynamic micro-batching: concurrent embedding requests share model batches.

Texts from every caller wait in one queue. A single worker takes what is queued (up to
`max_batch_size` texts, waiting at most `max_wait_seconds` for more while the batch is not
full), encodes it on the model's thread, and hands each caller its own rows. A caller that
gives up (cancelled, deadline) is skipped without disturbing anyone else's batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, Tracer

from ponder_runtime.attributes import BATCH_CALLERS, BATCH_SIZE
from ponder_runtime.tasks import cancel_and_wait


logger = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]
Encode = Callable[[list[str]], Awaitable[Matrix]]


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What one model batch looked like (for logs and metrics)."""

    size: int
    callers: int
    queue_wait_seconds: float
    encode_seconds: float


class _Request:
    """One caller's texts, how far the worker got, and where the vectors go."""

    __slots__ = ("enqueued", "future", "missing", "next", "rows", "span", "texts")

    def __init__(self, texts: Sequence[str], future: asyncio.Future[Matrix]) -> None:
        self.span: SpanContext = trace.get_current_span().get_span_context()  # the caller's
        self.texts = texts
        self.future = future
        self.rows: Matrix | None = None
        self.next = 0  # first text not yet taken into a batch
        self.missing = len(texts)
        self.enqueued = time.perf_counter()


class MicroBatcher:
    """Coalesces concurrent `embed` calls into model batches of bounded size and wait."""

    def __init__(
        self,
        encode: Encode,
        *,
        dimensions: int,
        max_batch_size: int = 64,
        max_wait_seconds: float = 0.002,
        on_batch: Callable[[BatchStats], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._encode = encode
        self._tracer = tracer or trace.NoOpTracer()
        self._dimensions = dimensions
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_seconds
        self._on_batch = on_batch
        self._pending: deque[_Request] = deque()
        self._queued_texts = 0
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the worker (on the running loop)."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def close(self) -> None:
        """Stop the worker; callers still waiting get CancelledError."""
        await cancel_and_wait(self._worker)
        self._worker = None

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """One raw (unnormalized) vector per text, in order."""
        if not texts:
            return np.empty((0, self._dimensions), dtype=np.float32)
        self.start()
        request = _Request(texts, asyncio.get_running_loop().create_future())
        self._pending.append(request)
        self._queued_texts += len(texts)
        self._arrived.set()
        return await request.future

    async def _gather(self) -> None:
        """Wait for work; then, while the batch would not be full, up to max_wait for more."""
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        deadline = time.perf_counter() + self._max_wait
        while self._queued_texts < self._max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[tuple[_Request, int]]:
        """Up to max_batch_size texts, round-robin over the waiting callers, so a small
        request is not stuck behind a huge one; callers that gave up are dropped."""
        batch: list[tuple[_Request, int]] = []
        while self._pending and len(batch) < self._max_batch_size:
            request = self._pending.popleft()
            if request.future.done():
                self._queued_texts -= len(request.texts) - request.next
                continue
            batch.append((request, request.next))
            request.next += 1
            self._queued_texts -= 1
            if request.next < len(request.texts):
                self._pending.append(request)
        return batch

    async def _run(self) -> None:
        while True:
            await self._gather()
            batch = self._take()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                with self._batch_span(batch):
                    vectors = await self._encode([request.texts[pos] for request, pos in batch])
            except Exception as exc:
                for request, _ in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            self._deliver(batch, vectors)
            if self._on_batch is not None:
                self._on_batch(
                    BatchStats(
                        size=len(batch),
                        callers=len({id(request) for request, _ in batch}),
                        queue_wait_seconds=started - min(r.enqueued for r, _ in batch),
                        encode_seconds=time.perf_counter() - started,
                    )
                )

    def _batch_span(
        self, batch: list[tuple[_Request, int]]
    ) -> contextlib.AbstractContextManager[Any]:
        """A span per model batch, linked to the spans of the requests it served (it belongs
        to none of their traces alone)."""
        callers = list({id(request): request for request, _ in batch}.values())
        links = [Link(r.span) for r in callers if r.span.is_valid]
        return self._tracer.start_as_current_span(
            "embed batch",
            context=trace.set_span_in_context(trace.INVALID_SPAN),  # a root of its own
            links=links,
            attributes={BATCH_SIZE: len(batch), BATCH_CALLERS: len(callers)},
        )

    def _deliver(self, batch: list[tuple[_Request, int]], vectors: Matrix) -> None:
        for (request, position), vector in zip(batch, vectors, strict=True):
            if request.future.done():  # the caller gave up meanwhile
                continue
            if request.rows is None:
                request.rows = np.empty((len(request.texts), vectors.shape[1]), dtype=np.float32)
            request.rows[position] = vector
            request.missing -= 1
            if request.missing == 0:
                request.future.set_result(request.rows)
