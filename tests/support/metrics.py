"""Reading what an in-memory metric reader collected."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, data point) of every point of the instrument `name`."""
    data = reader.get_metrics_data()
    assert data is not None
    return [
        (dict(point.attributes or {}), point)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def total(
    reader: InMemoryMetricReader, name: str, attributes: dict[str, Any] | None = None
) -> float:
    """Sum (counters) or count (histograms) of the points whose attributes include these."""
    found = 0.0
    for attrs, point in points(reader, name):
        if all(attrs.get(k) == v for k, v in (attributes or {}).items()):
            found += point.count if hasattr(point, "bucket_counts") else point.value
    return found
