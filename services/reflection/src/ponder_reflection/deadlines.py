"""The current request's deadline, set by the servicer and read by providers deep below."""

from __future__ import annotations

import contextvars
import time


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "reflection_deadline", default=None
)


def set_deadline(remaining_seconds: float | None) -> None:
    """Start the current request's clock: it must finish within `remaining_seconds`."""
    _DEADLINE.set(None if remaining_seconds is None else time.monotonic() + remaining_seconds)


def current_deadline() -> float | None:
    """time.monotonic() value by which the current request must be done (None: no deadline)."""
    return _DEADLINE.get()
