"""The incoming call's deadline, kept per RPC, so that calls made deep below (research asking
embedding) are bounded by what the caller has left rather than by a fixed timeout alone."""

from __future__ import annotations

import contextvars
import time
from functools import partial
from typing import Any

import grpc

from ponder_runtime.interceptors import Wrap, WrappingInterceptor, checked_stream, checked_unary


# Leave this much of the caller's deadline for our own reply.
MARGIN_SECONDS = 0.05

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ponder_deadline", default=None
)


def cap(default: float, remaining: float | None) -> float:
    """`default`, shortened to `remaining` seconds less the margin (None: no deadline)."""
    if remaining is None:
        return default
    return max(0.0, min(default, remaining - MARGIN_SECONDS))


def set_deadline(remaining_seconds: float | None) -> None:
    """Start the current RPC's clock: it must be done within `remaining_seconds` (a service may
    set a default when its caller set no deadline)."""
    _DEADLINE.set(None if remaining_seconds is None else time.monotonic() + remaining_seconds)


def current_deadline() -> float | None:
    """time.monotonic() value by which the current RPC must be done (None: no deadline)."""
    return _DEADLINE.get()


def timeout_within_deadline(default: float) -> float:
    """Timeout for a downstream call made while serving an RPC: `default`, capped by the
    time the RPC's caller has left (just `default` outside an RPC or without a deadline)."""
    deadline = _DEADLINE.get()
    return cap(default, None if deadline is None else deadline - time.monotonic())


async def _enter(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    set_deadline(context.time_remaining())


class DeadlineInterceptor(WrappingInterceptor):
    """Keeps each RPC's deadline where `timeout_within_deadline` finds it. Each gRPC call runs
    in a task of its own, so the value never leaks from one call into another."""

    def wraps(self, method: str) -> tuple[Wrap, Wrap]:
        """Set the deadline before either kind of behaviour runs."""
        return partial(checked_unary, _enter), partial(checked_stream, _enter)
