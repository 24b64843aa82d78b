"""A circuit breaker on each internal channel, so a peer that is down or hung costs a few
calls, not every call each waiting out its timeout: after `failure_threshold` calls in a row
found it down, calls fail at once with UNAVAILABLE (details name the breaker) until
`reset_timeout` passed; then one trial call decides (resilience.CircuitBreaker's rules).
A call whose deadline leaves at least `slow_call_seconds` after the wait does not fail at once:
it waits for the next trial and goes on with what is left of its deadline when the trial found
the peer back, so a peer that just came back costs a caller some waiting, not an error. It waits
for one trial only: if that trial fails too, the call fails (a peer that stays down costs each
call at most one open window, not its whole deadline).

A call found the peer down when it ended UNAVAILABLE, or DEADLINE_EXCEEDED having had at least
`slow_call_seconds` (a hurried caller's short deadline tells nothing about the peer). Any other
ending shows the peer answers. Health checks pass untouched: waiting for a peer to come up must
see it the moment it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from ponder_runtime.errors import UnavailableError
from ponder_runtime.interceptors import HEALTH_PREFIX
from ponder_runtime.resilience import BreakerState, CircuitBreaker, Failure, FailureKind


_DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED
_TRIAL_POLL_SECONDS = 0.05  # how often a waiting call looks whether the trial call settled
Continuation = Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]]
Sleep = Callable[[float], Awaitable[None]]


def breaker_interceptors(
    target: str, breaker: CircuitBreaker, *, slow_call_seconds: float, clock: Callable[[], float]
) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors guarding the unary and the server-streaming calls of one channel with one
    breaker (grpc.aio files an interceptor under the first call kind it implements, so one
    object cannot guard both)."""
    return [
        UnaryBreakerInterceptor(target, breaker, slow_call_seconds=slow_call_seconds, clock=clock),
        StreamBreakerInterceptor(target, breaker, slow_call_seconds=slow_call_seconds, clock=clock),
    ]


class _Guard:
    """What the unary and the streaming guard share: admission (waiting out an open breaker
    when the deadline allows) and telling the breaker how each call ended."""

    def __init__(
        self,
        target: str,
        breaker: CircuitBreaker,
        *,
        slow_call_seconds: float,
        clock: Callable[[], float],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.target = target
        self.breaker = breaker
        self._slow = slow_call_seconds
        self._clock = clock
        self._sleep = sleep
        self._watchers: set[asyncio.Task[None]] = set()

    async def _admit(
        self, details: grpc.aio.ClientCallDetails
    ) -> tuple[bool | None, grpc.aio.ClientCallDetails]:
        """Whether the call is the half-open trial (None for health checks, not guarded), and
        its details with the timeout shortened by any wait for the breaker."""
        method = details.method
        if (method.decode() if isinstance(method, bytes) else method).startswith(HEALTH_PREFIX):
            return None, details
        started = self._clock()
        openings = self.breaker.openings
        while True:
            try:
                trial = self.breaker.before_call(self.target)
            except UnavailableError as exc:
                reopened = self.breaker.openings != openings  # the trial it waited for failed
                pause = (
                    None if reopened else self._pause(exc, details.timeout, self._clock() - started)
                )
                if pause is None:
                    raise grpc.aio.AioRpcError(
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.aio.Metadata(),
                        grpc.aio.Metadata(("circuit-breaker", self.breaker.state.value)),
                        details=exc.message,
                    ) from None
                await self._sleep(pause)
                continue
            waited = self._clock() - started
            if waited > 0 and details.timeout is not None:
                details = grpc.aio.ClientCallDetails(
                    details.method,
                    details.timeout - waited,
                    details.metadata,
                    details.credentials,
                    details.wait_for_ready,
                )
            return trial, details

    def _pause(
        self, refused: UnavailableError, timeout: float | None, waited: float
    ) -> float | None:
        """How long to wait before asking the breaker again, or None to fail now (no deadline,
        or too little of it would be left for the call)."""
        if timeout is None:
            return None
        if self.breaker.state is BreakerState.OPEN:
            pause = refused.retry_after_seconds or 0.0
        else:
            pause = _TRIAL_POLL_SECONDS  # half-open: another call is the trial
        if timeout - waited - pause < self._slow:
            return None
        return pause

    async def _start(
        self,
        continuation: Continuation,
        details: grpc.aio.ClientCallDetails,
        request: Any,
        trial: bool | None,
    ) -> Any:
        try:
            return await continuation(details, request)
        except BaseException:
            if trial is not None:
                self.breaker.record_abandoned(trial=trial)
            raise

    async def _settle_at_end(self, call: Any, trial: bool, timeout: float | None) -> None:
        try:
            code = await call.code()
        except asyncio.CancelledError:
            self.breaker.record_abandoned(trial=trial)
            raise
        self._settle(code, trial, timeout)

    def _settle(self, code: grpc.StatusCode, trial: bool, timeout: float | None) -> None:
        slow = (timeout or 0.0) >= self._slow
        if code is grpc.StatusCode.UNAVAILABLE or (code is _DEADLINE_EXCEEDED and slow):
            failure = Failure(FailureKind.UNAVAILABLE, f"{self.target}: {code.name}")
            self.breaker.record_failure(failure, trial=trial)
        elif code in (grpc.StatusCode.CANCELLED, _DEADLINE_EXCEEDED):
            self.breaker.record_abandoned(trial=trial)  # says nothing about the peer
        else:
            self.breaker.record_success(trial=trial)


class UnaryBreakerInterceptor(_Guard, grpc.aio.UnaryUnaryClientInterceptor):
    """Guards the unary calls of one channel."""

    async def intercept_unary_unary(
        self, continuation: Continuation, details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        """Refuse while open; else make the call, and tell the breaker how it ended before
        the caller learns it (the next call sees the new state)."""
        trial, details = await self._admit(details)
        call = await self._start(continuation, details, request, trial)
        if trial is None:
            return call
        try:
            code = await call.code()
        except asyncio.CancelledError:
            call.cancel()
            self.breaker.record_abandoned(trial=trial)
            raise
        self._settle(code, trial, details.timeout)
        return call


class StreamBreakerInterceptor(_Guard, grpc.aio.UnaryStreamClientInterceptor):
    """Guards the server-streaming calls of one channel."""

    async def intercept_unary_stream(
        self, continuation: Continuation, details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        """As for unary calls; the stream's end settles it, in the background."""
        trial, details = await self._admit(details)
        call = await self._start(continuation, details, request, trial)
        if trial is not None:
            task = asyncio.ensure_future(self._settle_at_end(call, trial, details.timeout))
            self._watchers.add(task)  # held until done
            task.add_done_callback(self._watchers.discard)
        return call
