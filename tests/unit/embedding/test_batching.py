"""MicroBatcher with the real all-MiniLM-L6-v2: coalescing, correctness, cancellation, fairness."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import pytest_asyncio

from ponder_embedding.batching import BatchStats, MicroBatcher
from ponder_embedding.model import EmbeddingModel, ModelOptions


TEXTS = [
    f"question {i}: how does {topic} work?"
    for i, topic in enumerate(
        [
            "attention",
            "retrieval",
            "reflection",
            "tokenization",
            "quantization",
            "distillation",
            "beam search",
            "RLHF",
            "LoRA",
            "sharding",
            "caching",
            "batching",
        ]
        * 4
    )
]


@pytest_asyncio.fixture(scope="session")
async def model():
    """The packaged model, loaded once."""
    loaded = await EmbeddingModel.load(ModelOptions(device="cpu"))
    yield loaded
    loaded.close()


@pytest_asyncio.fixture
async def batcher(model):
    """A batcher over the model that records every batch."""
    stats: list[BatchStats] = []
    batcher = MicroBatcher(
        model.encode,
        dimensions=model.dimensions,
        max_batch_size=16,
        max_wait_seconds=0.005,
        on_batch=stats.append,
    )
    batcher.stats = stats  # type: ignore[attr-defined]
    yield batcher
    await batcher.close()


async def test_each_caller_gets_its_own_vector(model, batcher):
    """48 concurrent single-text calls get exactly the vector of their own text."""
    results = await asyncio.gather(*(batcher.embed([text]) for text in TEXTS))
    for text, result in zip(TEXTS, results, strict=True):
        alone = await model.encode([text])
        assert result.shape == (1, 384)
        np.testing.assert_allclose(result, alone, atol=1e-4)


async def test_concurrent_calls_share_bounded_batches(batcher):
    """Concurrent callers are coalesced into batches no larger than max_batch_size."""
    await asyncio.gather(*(batcher.embed([text]) for text in TEXTS))
    sizes = [s.size for s in batcher.stats]
    assert sum(sizes) == len(TEXTS)
    assert max(sizes) <= 16
    assert max(s.callers for s in batcher.stats) > 1
    assert len(sizes) <= len(TEXTS) // 4  # far fewer model calls than callers


async def test_a_cancelled_caller_does_not_break_the_batch(batcher):
    """Cancelling one caller leaves every other caller's result intact."""
    tasks = [asyncio.create_task(batcher.embed([text])) for text in TEXTS[:12]]
    await asyncio.sleep(0)
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    others = [d for i, d in enumerate(done) if i != 3]
    assert all(isinstance(d, np.ndarray) and d.shape == (1, 384) for d in others)
    assert (await batcher.embed(["still working"])).shape == (1, 384)


async def test_a_small_request_is_not_stuck_behind_a_big_one(batcher):
    """Round-robin batching: one text asked after 400 others comes back long before them."""
    big = asyncio.create_task(batcher.embed([f"long list item {i}" for i in range(400)]))
    await asyncio.sleep(0.01)
    small = await batcher.embed(["quick lookup"])
    assert small.shape == (1, 384)
    assert not big.done()
    assert (await big).shape == (400, 384)


async def test_an_encoder_failure_reaches_its_callers_only():
    """A failing batch fails its callers; the next batch works."""
    calls = 0

    async def flaky(texts: list[str]) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("device lost")
        return np.ones((len(texts), 4), dtype=np.float32)

    batcher = MicroBatcher(flaky, dimensions=4, max_batch_size=8, max_wait_seconds=0)
    try:
        with pytest.raises(RuntimeError, match="device lost"):
            await batcher.embed(["a", "b"])
        assert (await batcher.embed(["c"])).tolist() == [[1.0, 1.0, 1.0, 1.0]]
    finally:
        await batcher.close()


async def test_a_batch_is_one_span_linked_to_every_request_it_served_and_measured(model):
    """Requests from three traced callers land in one model batch: its span is a root of its
    own, linked to each caller's span; BatchObserver records the batch's size, wait and time."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ponder_embedding.service import BatchObserver

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")
    reader = InMemoryMetricReader()
    batcher = MicroBatcher(
        model.encode,
        dimensions=model.dimensions,
        max_batch_size=16,
        max_wait_seconds=0.05,
        on_batch=BatchObserver(MeterProvider(metric_readers=[reader]).get_meter("test")),
        tracer=tracer,
    )

    async def caller(name: str, texts: list[str]) -> None:
        with tracer.start_as_current_span(name):
            await batcher.embed(texts)

    try:
        await asyncio.gather(*(caller(f"caller {i}", TEXTS[i * 3 : i * 3 + 3]) for i in range(3)))
    finally:
        await batcher.close()
    finished = spans.get_finished_spans()
    callers = {s.context.span_id: s for s in finished if s.name.startswith("caller ")}
    batches = [s for s in finished if s.name == "embed batch"]
    assert len(batches) == 1
    batch = batches[0]
    assert batch.parent is None
    assert batch.context.trace_id not in {s.context.trace_id for s in callers.values()}
    assert {link.context.span_id for link in batch.links} == set(callers)
    assert dict(batch.attributes or {}) == {
        "ponder.embedding.batch.size": 9,
        "ponder.embedding.batch.callers": 3,
    }
    data = reader.get_metrics_data()
    assert data is not None
    recorded = {
        metric.name: point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    }
    assert recorded["ponder.embedding.batch.texts"].sum == 9
    assert recorded["ponder.embedding.queue.wait"].count == 1
    assert recorded["ponder.embedding.encode.duration"].sum > 0
