"""Process gauges every service exports: resident memory and the event loop's task count, so
that a leak (memory, or tasks left behind by clients that went away) shows on a dashboard and
in the reliability tests. Prometheus names: `process_memory_usage_bytes`, `ponder_runtime_tasks`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation


PROCESS_MEMORY_USAGE = "process.memory.usage"  # semantic conventions: resident set, bytes
RUNTIME_TASKS = "ponder.runtime.tasks"  # asyncio tasks alive in the server's event loop


def resident_bytes(pid: int | str = "self") -> int | None:
    """Resident set size of a process (Linux /proc), or None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def observe_runtime(meter: Meter, loop: asyncio.AbstractEventLoop) -> None:
    """Register the gauges; they are read when metrics are collected (a scrape, an export)."""

    def memory(options: CallbackOptions) -> Iterable[Observation]:
        rss = resident_bytes()
        return [] if rss is None else [Observation(rss)]

    def tasks(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(len(asyncio.all_tasks(loop)))]

    meter.create_observable_gauge(
        PROCESS_MEMORY_USAGE, callbacks=[memory], unit="By", description="Resident memory."
    )
    meter.create_observable_gauge(
        RUNTIME_TASKS,
        callbacks=[tasks],
        unit="{task}",
        description="asyncio tasks alive in the server's event loop.",
    )
