"""Calling a flaky, rate-limited upstream politely: a concurrency limit whose queue respects
deadlines, retries with exponential backoff and full jitter (honouring Retry-After) for as long
as the caller's deadline leaves time for another attempt (a large attempt cap is only a safety
net), a per-process retry budget (retries at most a fraction of recent attempts, as in gRPC
retry throttling and Envoy's retry budgets) so a dead upstream gets no retry storm, and a
circuit breaker that fails fast while the upstream is down.

Why not `stamina` (read in stamina 26.1.0, `_core.py`): its async iterator builds
`tenacity.AsyncRetrying(sleep=_smart_sleep)`, and `_smart_sleep` awaits `asyncio.sleep` with no
seam for a sleep or a clock; its one test switch, `set_testing`, is process-wide and turns every
wait into 0, a hook's own delay included, so tests could no longer check the delays. `timeout=`
is `tenacity.stop_after_delay` (time since the first attempt), blind to the next wait and to a
per-call deadline; only the `on=` hook, given the exception alone, could refuse a wait that
would overrun the deadline, spend the budget and pick the delay. Every rule would stay ours in
that hook, stamina would only count attempts, and we would still sleep ourselves. Its jitter
is also added to the exponential delay (not full jitter). This loop is about forty lines.

The policies know nothing about HTTP: a classifier turns the upstream's exceptions into
`Failure`s (retryable or not, rate limit or outage, the delay the upstream asked for).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation

from ponder_runtime.attributes import BREAKER_STATE, FAILURE_KIND, UPSTREAM, UPSTREAM_OUTCOME
from ponder_runtime.errors import (
    DeadlineExceededError,
    PonderError,
    ResourceExhaustedError,
    UnavailableError,
)
from ponder_runtime.metrics import UPSTREAM_BREAKER_STATE, UPSTREAM_DURATION, UPSTREAM_RETRIES


logger = logging.getLogger(__name__)

# What a caller rejected during a half-open trial is told to wait.
_TRIAL_RETRY_SECONDS = 1.0

T = TypeVar("T")
Clock = Callable[[], float]


class FailureKind(enum.Enum):
    """Why an upstream call failed."""

    RATE_LIMITED = "rate_limited"  # 429: retry later; not a sign the upstream is down
    UNAVAILABLE = "unavailable"  # 5xx, connection refused/reset, timeouts: counts as an outage
    REJECTED = "rejected"  # 4xx other than 429: retrying cannot help


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified upstream failure."""

    kind: FailureKind
    message: str
    retry_after: float | None = None
    timed_out: bool = False  # the attempt ran out of time (DEADLINE_EXCEEDED if final)

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed."""
        return self.kind is not FailureKind.REJECTED


class ConcurrencyLimit:
    """At most `limit` calls at once; waiting callers queue in order, but never past their
    deadline (DEADLINE_EXCEEDED instead of a reply that comes too late)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self.waiting = 0
        self.in_use = 0
        self.peak_in_use = 0

    async def acquire(self, timeout: float | None) -> None:
        """Take a slot, waiting at most `timeout` seconds."""
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await self._semaphore.acquire()
            self.in_use += 1
            self.peak_in_use = max(self.peak_in_use, self.in_use)
        except TimeoutError:
            raise DeadlineExceededError(
                f"waited {timeout:.2f}s for one of {self.limit} upstream slots; the deadline "
                "passed first"
            ) from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        """Give a slot back."""
        self.in_use -= 1
        self._semaphore.release()


class BreakerState(enum.Enum):
    """Circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def _outcome(exc: PonderError) -> str:
    """How a call ended, for UPSTREAM_OUTCOME."""
    if exc.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return "rate_limited"
    if exc.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return "deadline_exceeded"
    if exc.code is grpc.StatusCode.UNAVAILABLE:
        return "breaker_open" if "circuit_breaker" in exc.metadata else "unavailable"
    return "rejected"


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive outages; while open, calls fail at once
    with UNAVAILABLE (and the time until the next try); after `reset_timeout` one trial call
    goes through (half-open) and closes the breaker on success."""

    def __init__(
        self, *, failure_threshold: int, reset_timeout: float, clock: Clock = time.monotonic
    ) -> None:
        self._threshold = failure_threshold
        self._reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.state = BreakerState.CLOSED
        self.openings = 0  # how many times it opened (a failed trial opens it again)

    def before_call(self, upstream: str) -> bool:
        """Let a call through (True when it is the half-open trial call) or raise
        UnavailableError while the breaker is open or another trial is running."""
        if self.state is BreakerState.CLOSED:
            return False
        wait = self._opened_at + self._reset_timeout - self._clock()
        if self.state is BreakerState.OPEN and wait <= 0:
            self.state = BreakerState.HALF_OPEN
        if self.state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        if self.state is BreakerState.HALF_OPEN:
            message = "a trial call is checking whether it is back (circuit breaker half-open)"
            wait = _TRIAL_RETRY_SECONDS
        else:
            message = f"not calling it for another {wait:.1f}s (circuit breaker open)"
        raise UnavailableError(
            f"{upstream} is failing; {message}",
            retry_after_seconds=max(wait, 0.0),
            metadata={"circuit_breaker": self.state.value},
        )

    def record_success(self, *, trial: bool = False) -> None:
        """A call worked: the upstream answers, close."""
        self._close()

    def record_abandoned(self, *, trial: bool) -> None:
        """A call ended without telling anything about the upstream (cancelled, never got a
        slot, failed on our side): if it was the trial, let another call try."""
        if trial:
            self._trial_in_flight = False

    def _close(self) -> None:
        self._failures = 0
        if self.state is not BreakerState.CLOSED:
            logger.info("circuit breaker closed")
        self.state = BreakerState.CLOSED
        self._trial_in_flight = False

    def record_failure(self, failure: Failure, *, trial: bool = False) -> None:
        """A call failed; outages count towards opening (rate limits and rejections show the
        upstream answers, so they close a half-open breaker)."""
        if failure.kind is not FailureKind.UNAVAILABLE:
            if trial or self.state is BreakerState.CLOSED:
                self._close()
            return
        if trial:
            self._trial_in_flight = False
        self._failures += 1
        if self.state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            if self.state is not BreakerState.OPEN:
                logger.warning("circuit breaker opened", extra={"failures": self._failures})
            self.state = BreakerState.OPEN
            self._opened_at = self._clock()
            self.openings += 1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped at `max_delay`; the upstream's Retry-After
    (capped the same way) when it gives one. Retries go on while the deadline leaves
    `min_attempt_seconds` for another attempt after the wait; `max_attempts` is a safety net,
    not the usual stop."""

    max_attempts: int = 100
    base_delay: float = 0.5
    max_delay: float = 20.0
    min_attempt_seconds: float = 0.5

    def delay(self, attempt: int, failure: Failure, rng: random.Random) -> float:
        """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1)."""
        if failure.retry_after is not None:
            return min(failure.retry_after, self.max_delay)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class RetryBudget:
    """Retries allowed per process: at most `ratio` of the attempts of the last `window`
    seconds (plus `min_retries` per window, so a quiet process can still retry). Counted in
    one-second buckets: memory does not grow with traffic."""

    def __init__(
        self,
        *,
        ratio: float = 0.5,
        min_retries: int = 10,
        window: int = 10,
        clock: Clock = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_retries = min_retries
        self._window = window
        self._clock = clock
        self._buckets: dict[int, list[int]] = {}  # second -> [attempts, retries]

    def _bucket(self) -> list[int]:
        now = int(self._clock())
        for second in [s for s in self._buckets if s <= now - self._window]:
            del self._buckets[second]
        return self._buckets.setdefault(now, [0, 0])

    def totals(self) -> tuple[int, int]:
        """(attempts, retries) in the window."""
        self._bucket()
        values = list(self._buckets.values())
        return sum(v[0] for v in values), sum(v[1] for v in values)

    def record_attempt(self) -> None:
        """Count one upstream attempt (first or retry)."""
        self._bucket()[0] += 1

    def try_retry(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        attempts, retries = self.totals()
        if retries + 1 > self.ratio * attempts + self.min_retries:
            return False
        self._bucket()[1] += 1
        return True


@dataclass(slots=True)
class UpstreamStats:
    """Counters for metrics and tests."""

    calls: int = 0
    retries: int = 0
    failures: int = 0
    rejected_by_breaker: int = 0
    budget_denied: int = 0


class ResilientCaller:
    """Runs upstream calls under the limit, the breaker and the retry policy, within a
    deadline; maps final failures to PonderErrors with the right gRPC code."""

    def __init__(
        self,
        upstream: str,
        classify: Callable[[Exception], Failure | None],
        *,
        limit: ConcurrencyLimit,
        breaker: CircuitBreaker,
        policy: RetryPolicy,
        call_timeout: float,
        budget: RetryBudget | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        meter: Meter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.upstream = upstream
        self._sleep = sleep
        self._classify = classify
        self.limit = limit
        self.breaker = breaker
        self._policy = policy
        self._call_timeout = call_timeout
        self.budget = budget or RetryBudget(clock=clock)
        self._clock = clock
        self._rng = rng or random.Random()
        self.stats = UpstreamStats()
        meter = meter or NoOpMeter(__name__)
        self._duration = meter.create_histogram(
            UPSTREAM_DURATION, unit="s", description="Upstream calls (retries included)."
        )
        self._retries = meter.create_counter(
            UPSTREAM_RETRIES, unit="{retry}", description="Upstream attempts retried."
        )
        meter.create_observable_gauge(
            UPSTREAM_BREAKER_STATE,
            callbacks=[self._observe_breaker],
            description="Circuit breaker: 0 closed, 1 half-open, 2 open.",
        )

    def _observe_breaker(self, _options: CallbackOptions) -> Iterable[Observation]:
        value = _BREAKER_VALUES[self.breaker.state]
        yield Observation(value, {UPSTREAM: self.upstream, BREAKER_STATE: self.breaker.state.value})

    async def call(self, make: Callable[[float], Awaitable[T]], *, deadline: float | None) -> T:
        """`make(timeout)` starts one attempt with a per-attempt timeout; `deadline` is a
        clock() time by which everything must be over (None: only call_timeout applies).
        Timed by final outcome (UPSTREAM_DURATION)."""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self._call(make, deadline)
        except PonderError as exc:
            outcome = _outcome(exc)
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        else:
            outcome = "ok"
            return result
        finally:
            self._duration.record(
                time.perf_counter() - started,
                {UPSTREAM: self.upstream, UPSTREAM_OUTCOME: outcome},
            )

    async def _call(self, make: Callable[[float], Awaitable[T]], deadline: float | None) -> T:
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline is None else deadline - self._clock()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceededError(f"no time left to call {self.upstream}")
            try:
                trial = self.breaker.before_call(self.upstream)
            except UnavailableError:
                self.stats.rejected_by_breaker += 1
                raise
            settled = False  # whether the breaker heard how this attempt went
            try:
                await self.limit.acquire(remaining)
                try:
                    self.stats.calls += 1
                    self.budget.record_attempt()
                    timeout = self._call_timeout
                    if deadline is not None:
                        timeout = min(timeout, max(0.001, deadline - self._clock()))
                    result = await make(timeout)
                except Exception as exc:
                    failure = self._classify(exc)
                    if failure is None:
                        raise
                    self.breaker.record_failure(failure, trial=trial)
                    settled = True
                    self.stats.failures += 1
                    delay = self._policy.delay(attempt, failure, self._rng)
                    stop = self._stop(failure, attempt, delay, deadline)
                    if stop is not None:
                        raise self._final(failure, attempt, stop) from exc
                else:
                    self.breaker.record_success(trial=trial)
                    settled = True
                    return result
                finally:
                    self.limit.release()  # never hold a slot while backing off
            finally:
                if not settled:
                    self.breaker.record_abandoned(trial=trial)
            self.stats.retries += 1
            self._retries.add(1, {UPSTREAM: self.upstream, FAILURE_KIND: failure.kind.value})
            logger.info(
                "upstream call retried",
                extra={
                    "upstream": self.upstream,
                    "attempt": attempt,
                    "failure": failure.kind.value,
                    "delay_s": round(delay, 3),
                },
            )
            await self._sleep(delay)

    def _stop(
        self, failure: Failure, attempt: int, delay: float, deadline: float | None
    ) -> str | None:
        """Why not to retry (None: retry after `delay`); the budget is spent last."""
        if not failure.retryable:
            return "not retryable"
        if attempt >= self._policy.max_attempts:
            return f"the attempt cap ({self._policy.max_attempts}) was reached"
        if deadline is not None:
            left = deadline - self._clock()
            if left - delay < self._policy.min_attempt_seconds:
                return f"the deadline leaves {max(left, 0.0):.1f}s, too little for another attempt"
        if not self.budget.try_retry():
            self.stats.budget_denied += 1
            return "the retry budget is spent (too many retries lately)"
        return None

    def _final(self, failure: Failure, attempts: int, why: str) -> PonderError:
        message = f"{self.upstream} failed after {attempts} attempt(s) ({why}): {failure.message}"
        if failure.timed_out:
            return DeadlineExceededError(message)
        if failure.kind is FailureKind.RATE_LIMITED:
            return ResourceExhaustedError(message, retry_after_seconds=failure.retry_after or 1.0)
        if failure.kind is FailureKind.UNAVAILABLE:
            return UnavailableError(message, retry_after_seconds=failure.retry_after)
        return PonderError(message, metadata={"upstream": self.upstream})
