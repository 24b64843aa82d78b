"""Server-sent events as the REST facade writes them."""

from __future__ import annotations


def sse_fields(frame: str) -> dict[str, str]:
    """The fields of one SSE frame ("id", "event", "data")."""
    fields: dict[str, str] = {}
    for line in frame.split("\n"):
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields
