"""The process gauges: resident memory and the event loop's live tasks."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from ponder_runtime.runtime_metrics import (
    PROCESS_MEMORY_USAGE,
    RUNTIME_TASKS,
    observe_runtime,
    resident_bytes,
)


def gauges(reader: InMemoryMetricReader) -> dict[str, float]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    }


async def test_gauges_read_memory_and_count_the_loops_tasks():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    observe_runtime(provider.get_meter("test"), asyncio.get_running_loop())
    before = gauges(reader)
    sleepers = [asyncio.create_task(asyncio.sleep(10)) for _ in range(25)]
    try:
        during = gauges(reader)
    finally:
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
    assert during[RUNTIME_TASKS] == before[RUNTIME_TASKS] + 25
    assert during[PROCESS_MEMORY_USAGE] > 10 * 1024 * 1024
    provider.shutdown()


def test_resident_bytes_of_this_process_and_of_none():
    own = resident_bytes()
    assert own is not None
    assert own > 0
    assert resident_bytes(2**22 + 12345) is None  # no such process
