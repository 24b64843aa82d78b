"""ponder_runtime.resilience: concurrency limit, circuit breaker, retry policy, ResilientCaller."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ponder_runtime import (
    DeadlineExceededError,
    PonderError,
    ResourceExhaustedError,
    UnavailableError,
)
from ponder_runtime.resilience import (
    BreakerState,
    CircuitBreaker,
    ConcurrencyLimit,
    Failure,
    FailureKind,
    ResilientCaller,
    RetryBudget,
    RetryPolicy,
)


UPSTREAM = "model endpoint test.invalid"


# ---------------------------------------------------------------------------------------------
# Helpers


class FakeClock:
    """A monotonic clock that moves only when told to; `sleep` is what the callers built on it
    are given to back off with (asyncio's, or a Sleeps recorder)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Limited(Exception):
    """The upstream said 429, maybe with a Retry-After."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP 429 (retry after {retry_after})")
        self.retry_after = retry_after


class Down(Exception):
    """The upstream is unreachable or answered 5xx."""


class Bad(Exception):
    """The upstream rejected the request (4xx other than 429)."""


class Slow(Down):
    """The attempt ran out of time (classified as timed out by type, not by its text)."""


def classify(exc: Exception) -> Failure | None:
    """The test upstream's classifier: Limited/Down/Bad, anything else unclassified."""
    if isinstance(exc, Limited):
        return Failure(FailureKind.RATE_LIMITED, str(exc), exc.retry_after)
    if isinstance(exc, Slow):
        return Failure(FailureKind.UNAVAILABLE, str(exc), timed_out=True)
    if isinstance(exc, Down):
        return Failure(FailureKind.UNAVAILABLE, str(exc))
    if isinstance(exc, Bad):
        return Failure(FailureKind.REJECTED, str(exc))
    return None


class Upstream:
    """A scripted `make`: each attempt records its timeout, then raises or returns the next
    outcome (the last one repeats); it can also take `duration` seconds of fake time."""

    def __init__(
        self,
        *outcomes: object,
        clock: FakeClock | None = None,
        duration: float = 0.0,
    ) -> None:
        self.outcomes = list(outcomes)
        self.timeouts: list[float] = []
        self.started_at: list[float] = []
        self._clock = clock
        self._duration = duration

    @property
    def calls(self) -> int:
        return len(self.timeouts)

    async def __call__(self, timeout: float) -> object:
        self.timeouts.append(timeout)
        if self._clock is not None:
            self.started_at.append(self._clock())
            self._clock.advance(self._duration)
        outcome = self.outcomes[0] if len(self.outcomes) == 1 else self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Sleeps:
    """Stands in for asyncio.sleep inside the module under test: records each backoff and
    moves the fake clock by it; with a gate set it also waits for the gate to open."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.clock.advance(delay)
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock."""
    return FakeClock()


@pytest.fixture
def sleeps(clock: FakeClock) -> Sleeps:
    """Backoff sleeps of the callers built on `clock` recorded against it instead of waited."""
    recorder = Sleeps(clock)
    clock.sleep = recorder
    return recorder


def make_caller(
    clock: Callable[[], float],
    *,
    limit: int = 4,
    failure_threshold: int = 100,
    reset_timeout: float = 30.0,
    max_attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
    call_timeout: float = 10.0,
    seed: int = 7,
) -> ResilientCaller:
    """A ResilientCaller over the test classifier with its parts built from the arguments."""
    return ResilientCaller(
        UPSTREAM,
        classify,
        limit=ConcurrencyLimit(limit),
        breaker=CircuitBreaker(
            failure_threshold=failure_threshold, reset_timeout=reset_timeout, clock=clock
        ),
        policy=RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay),
        call_timeout=call_timeout,
        clock=clock,
        rng=random.Random(seed),
        sleep=getattr(clock, "sleep", asyncio.sleep),
    )


def details(error: PonderError) -> tuple[error_details_pb2.ErrorInfo, list[float]]:
    """The ErrorInfo of an error's google.rpc.Status and its RetryInfo delays in seconds."""
    status: status_pb2.Status = error.to_rpc_status()
    infos: list[error_details_pb2.ErrorInfo] = []
    delays: list[float] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            assert detail.Unpack(info)
            infos.append(info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            assert detail.Unpack(retry)
            delays.append(retry.retry_delay.ToNanoseconds() / 1e9)
        else:
            pytest.fail(f"unexpected detail {detail.type_url}")
    assert len(infos) == 1
    return infos[0], delays


async def settle(rounds: int = 5) -> None:
    """Let every ready task run a few steps."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def cancel_all(*tasks: asyncio.Task[Any]) -> None:
    """Cancel tasks and wait for them, whatever they end with."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def outage(message: str = "HTTP 503") -> Failure:
    """An UNAVAILABLE failure."""
    return Failure(FailureKind.UNAVAILABLE, message)


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read afresh (keeps mypy from narrowing it across calls)."""
    return breaker.state


# ---------------------------------------------------------------------------------------------
# ConcurrencyLimit


@pytest.mark.parametrize(("limit", "callers"), [(1, 5), (2, 7), (3, 12), (5, 3)])
async def test_limit_never_exceeded(limit: int, callers: int) -> None:
    """Many concurrent callers never hold more than `limit` slots, and the peak reaches it."""
    slots = ConcurrencyLimit(limit)
    seen: list[int] = []

    async def work() -> None:
        await slots.acquire(None)
        try:
            seen.append(slots.in_use)
            await settle(3)
            seen.append(slots.in_use)
        finally:
            slots.release()

    await asyncio.gather(*(work() for _ in range(callers)))
    assert max(seen) <= limit
    assert slots.peak_in_use == min(limit, callers)
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_waiters_served_in_arrival_order_and_counted() -> None:
    """Queued callers are counted in `waiting` and get freed slots in the order they came."""
    slots = ConcurrencyLimit(1)
    await slots.acquire(None)
    order: list[int] = []

    async def work(i: int) -> None:
        await slots.acquire(None)
        order.append(i)
        await asyncio.sleep(0)
        slots.release()

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(work(i)))
        await asyncio.sleep(0)
    assert slots.waiting == 5
    assert slots.in_use == 1
    slots.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert (slots.in_use, slots.waiting, slots.peak_in_use) == (0, 0, 1)


async def test_release_hands_the_slot_to_a_waiter() -> None:
    """Releasing a slot lets exactly one queued caller in."""
    slots = ConcurrencyLimit(1)
    await slots.acquire(None)
    first = asyncio.create_task(slots.acquire(None))
    second = asyncio.create_task(slots.acquire(None))
    await settle()
    assert not first.done()
    assert slots.waiting == 2
    slots.release()
    await settle()
    assert first.done()
    assert not second.done()
    assert (slots.in_use, slots.waiting) == (1, 1)
    slots.release()
    await asyncio.wait_for(second, 1.0)
    assert (slots.in_use, slots.waiting) == (1, 0)
    slots.release()


async def test_acquire_free_slot_does_not_wait() -> None:
    """A free slot is taken at once, with or without a timeout."""
    slots = ConcurrencyLimit(2)
    await slots.acquire(None)
    await slots.acquire(0.01)
    assert (slots.in_use, slots.waiting, slots.peak_in_use) == (2, 0, 2)


async def test_acquire_timeout_raises_deadline_exceeded_and_leaks_nothing() -> None:
    """A waiter whose timeout expires gets DEADLINE_EXCEEDED, leaves the queue, takes no slot."""
    slots = ConcurrencyLimit(1)
    await slots.acquire(None)
    with pytest.raises(DeadlineExceededError) as caught:
        await slots.acquire(0.02)
    assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "1 upstream slots" in caught.value.message
    assert (slots.in_use, slots.waiting) == (1, 0)
    slots.release()
    await asyncio.wait_for(slots.acquire(0.02), 1.0)
    assert (slots.in_use, slots.waiting, slots.peak_in_use) == (1, 0, 1)
    slots.release()


async def test_timed_out_waiter_does_not_block_later_waiters() -> None:
    """A waiter that timed out in the middle of the queue does not swallow a released slot."""
    slots = ConcurrencyLimit(1)
    await slots.acquire(None)
    impatient = asyncio.create_task(slots.acquire(0.01))
    patient = asyncio.create_task(slots.acquire(None))
    with pytest.raises(DeadlineExceededError):
        await impatient
    assert slots.waiting == 1
    slots.release()
    await asyncio.wait_for(patient, 1.0)
    assert (slots.in_use, slots.waiting) == (1, 0)
    slots.release()
    assert slots.in_use == 0


async def test_cancelled_waiter_leaves_the_queue() -> None:
    """A queued caller that is cancelled stops being counted and takes no slot."""
    slots = ConcurrencyLimit(1)
    await slots.acquire(None)
    waiter = asyncio.create_task(slots.acquire(None))
    await settle()
    assert slots.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (slots.in_use, slots.waiting) == (1, 0)
    slots.release()
    await asyncio.wait_for(slots.acquire(None), 1.0)
    slots.release()


# ---------------------------------------------------------------------------------------------
# CircuitBreaker


@pytest.mark.parametrize("threshold", [1, 2, 5])
def test_breaker_opens_after_threshold_consecutive_outages(
    clock: FakeClock, threshold: int
) -> None:
    """The breaker stays closed for threshold-1 outages and opens on the threshold-th."""
    breaker = CircuitBreaker(failure_threshold=threshold, reset_timeout=10, clock=clock)
    for _ in range(threshold - 1):
        trial = breaker.before_call(UPSTREAM)
        breaker.record_failure(outage(), trial=trial)
        assert state(breaker) is BreakerState.CLOSED
    trial = breaker.before_call(UPSTREAM)
    breaker.record_failure(outage(), trial=trial)
    assert state(breaker) is BreakerState.OPEN
    with pytest.raises(UnavailableError):
        breaker.before_call(UPSTREAM)


@pytest.mark.parametrize("kind", [FailureKind.RATE_LIMITED, FailureKind.REJECTED])
def test_breaker_ignores_rate_limits_and_rejections(clock: FakeClock, kind: FailureKind) -> None:
    """However many 429s or 4xx rejections come back, the breaker never opens."""
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=clock)
    for _ in range(20):
        trial = breaker.before_call(UPSTREAM)
        breaker.record_failure(Failure(kind, "nope", 1.0), trial=trial)
    assert state(breaker) is BreakerState.CLOSED
    trial = breaker.before_call(UPSTREAM)


def test_open_breaker_rejects_with_retry_info_and_error_info(clock: FakeClock) -> None:
    """While open, before_call raises UNAVAILABLE with RetryInfo (time left) and ErrorInfo."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure(outage())
    clock.advance(3)
    with pytest.raises(UnavailableError) as caught:
        breaker.before_call(UPSTREAM)
    error = caught.value
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.retry_after_seconds == pytest.approx(7.0)
    assert UPSTREAM in error.message
    assert error.to_rpc_status().code == grpc.StatusCode.UNAVAILABLE.value[0]
    info, delays = details(error)
    assert info.reason == "UNAVAILABLE"
    assert dict(info.metadata) == {"circuit_breaker": "open"}
    assert delays == [pytest.approx(7.0)]
    assert state(breaker) is BreakerState.OPEN


@pytest.mark.parametrize(("elapsed", "remaining"), [(0.0, 10.0), (4.5, 5.5), (9.9, 0.1)])
def test_open_breaker_reports_remaining_wait(
    clock: FakeClock, elapsed: float, remaining: float
) -> None:
    """The advertised wait counts down with the clock until the reset timeout."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure(outage())
    clock.advance(elapsed)
    with pytest.raises(UnavailableError) as caught:
        breaker.before_call(UPSTREAM)
    assert caught.value.retry_after_seconds == pytest.approx(remaining)


def test_half_open_allows_exactly_one_trial(clock: FakeClock) -> None:
    """After the reset timeout one trial goes through; a concurrent second caller is rejected."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure(outage())
    clock.advance(10)
    assert breaker.before_call(UPSTREAM)  # the trial
    assert state(breaker) is BreakerState.HALF_OPEN
    with pytest.raises(UnavailableError) as caught:
        breaker.before_call(UPSTREAM)
    info, _ = details(caught.value)
    assert dict(info.metadata) == {"circuit_breaker": "half_open"}
    assert caught.value.retry_after_seconds is not None
    assert caught.value.retry_after_seconds >= 0
    assert state(breaker) is BreakerState.HALF_OPEN


def test_trial_success_closes(clock: FakeClock) -> None:
    """A successful trial closes the breaker and calls flow again."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure(outage())
    clock.advance(10)
    trial = breaker.before_call(UPSTREAM)
    breaker.record_success(trial=trial)
    assert state(breaker) is BreakerState.CLOSED
    for _ in range(3):
        trial = breaker.before_call(UPSTREAM)


def test_trial_failure_reopens_with_fresh_timer(clock: FakeClock) -> None:
    """A failed trial re-opens the breaker, and the reset timeout counts from that failure."""
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(3):
        breaker.record_failure(outage())
    clock.advance(10)
    trial = breaker.before_call(UPSTREAM)
    clock.advance(4)  # the trial takes 4 s, then fails
    breaker.record_failure(outage(), trial=trial)
    assert state(breaker) is BreakerState.OPEN
    clock.advance(9.9)
    with pytest.raises(UnavailableError) as caught:
        breaker.before_call(UPSTREAM)
    assert caught.value.retry_after_seconds == pytest.approx(0.1)
    info, _ = details(caught.value)
    assert dict(info.metadata) == {"circuit_breaker": "open"}
    clock.advance(0.1)
    trial = breaker.before_call(UPSTREAM)
    assert state(breaker) is BreakerState.HALF_OPEN


def test_abandoned_trial_lets_another_trial_through(clock: FakeClock) -> None:
    """A trial cancelled by its caller frees the trial slot without changing the state."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure(outage())
    clock.advance(10)
    trial = breaker.before_call(UPSTREAM)
    breaker.record_abandoned(trial=trial)
    assert state(breaker) is BreakerState.HALF_OPEN
    trial = breaker.before_call(UPSTREAM)
    with pytest.raises(UnavailableError):
        breaker.before_call(UPSTREAM)


def test_success_resets_failure_count(clock: FakeClock) -> None:
    """A success in between restarts the count of consecutive outages."""
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(2):
        breaker.record_failure(outage())
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure(outage())
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure(outage())
    assert state(breaker) is BreakerState.OPEN


def test_breaker_closed_by_non_outage_trial_needs_threshold_outages_again(
    clock: FakeClock,
) -> None:
    """Once a trial's 429 closes the breaker, it takes `threshold` new outages to re-open."""
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(3):
        breaker.record_failure(outage())
    clock.advance(10)
    trial = breaker.before_call(UPSTREAM)
    breaker.record_failure(Failure(FailureKind.RATE_LIMITED, "HTTP 429", 1.0), trial=trial)
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure(outage())
    assert state(breaker) is BreakerState.CLOSED


# ---------------------------------------------------------------------------------------------
# RetryPolicy.delay


@pytest.mark.parametrize(
    ("retry_after", "max_delay", "attempt", "expected"),
    [
        (3.0, 20.0, 1, 3.0),
        (0.0, 20.0, 2, 0.0),
        (50.0, 20.0, 1, 20.0),
        (20.0, 20.0, 7, 20.0),
        (0.25, 1.0, 9, 0.25),
    ],
)
def test_retry_after_wins_capped_at_max_delay(
    retry_after: float, max_delay: float, attempt: int, expected: float
) -> None:
    """A Retry-After is used as is (capped at max_delay), whatever the attempt, without jitter."""
    policy = RetryPolicy(base_delay=0.5, max_delay=max_delay)
    rng = random.Random(1)
    state = rng.getstate()
    failure = Failure(FailureKind.RATE_LIMITED, "429", retry_after)
    assert policy.delay(attempt, failure, rng) == expected
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("attempt", "cap"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (10, 5.0)],
)
def test_backoff_is_full_jitter_within_exponential_cap(attempt: int, cap: float) -> None:
    """Without Retry-After the delay is uniform over [0, min(max, base*2^(n-1))]."""
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0)
    rng = random.Random(42)
    delays = [policy.delay(attempt, outage(), rng) for _ in range(400)]
    assert all(0.0 <= d <= cap for d in delays)
    assert min(delays) < 0.1 * cap  # full jitter: close to zero happens
    assert max(delays) > 0.9 * cap  # ... and so does close to the cap
    assert sum(delays) / len(delays) == pytest.approx(cap / 2, rel=0.15)


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    """The same seed gives the same sequence of delays."""
    policy = RetryPolicy(base_delay=0.5, max_delay=20.0)
    first = [policy.delay(n, outage(), random.Random(3)) for n in range(1, 8)]
    second = [policy.delay(n, outage(), random.Random(3)) for n in range(1, 8)]
    assert first == second


# ---------------------------------------------------------------------------------------------
# ResilientCaller


@pytest.mark.parametrize(
    "failures",
    [
        [],
        [Down("HTTP 502")],
        [Limited(0.5), Down("connection reset")],
        [Down("HTTP 503"), Limited(None), Down("HTTP 500")],
    ],
    ids=["first-try", "one-failure", "two-failures", "three-failures"],
)
async def test_succeeds_after_transient_failures(
    clock: FakeClock, sleeps: Sleeps, failures: list[Exception]
) -> None:
    """Transient failures are retried until one attempt works; stats count every step."""
    caller = make_caller(clock, max_attempts=4)
    upstream = Upstream(*failures, "answer")
    assert await caller.call(upstream, deadline=None) == "answer"
    k = len(failures)
    assert upstream.calls == k + 1
    assert (caller.stats.calls, caller.stats.retries, caller.stats.failures) == (k + 1, k, k)
    assert len(sleeps.delays) == k
    assert state(caller.breaker) is BreakerState.CLOSED
    assert (caller.limit.in_use, caller.limit.waiting) == (0, 0)


async def test_retry_after_delays_are_honoured(clock: FakeClock, sleeps: Sleeps) -> None:
    """The backoff before each retry is the upstream's Retry-After, capped at max_delay."""
    caller = make_caller(clock, max_attempts=4, max_delay=20.0)
    upstream = Upstream(Limited(2.5), Limited(0.75), Limited(100.0), "ok")
    assert await caller.call(upstream, deadline=None) == "ok"
    assert sleeps.delays == [2.5, 0.75, 20.0]


async def test_backoff_without_retry_after_uses_policy_jitter(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """Without Retry-After the caller sleeps the policy's jittered delay for each attempt."""
    caller = make_caller(clock, max_attempts=4, base_delay=0.5, max_delay=20.0, seed=11)
    upstream = Upstream(Down("a"), Down("b"), Down("c"), "ok")
    assert await caller.call(upstream, deadline=None) == "ok"
    twin = random.Random(11)
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=20.0)
    expected = [policy.delay(n, outage(), twin) for n in (1, 2, 3)]
    assert sleeps.delays == expected
    assert all(0 <= d <= 0.5 * 2 ** (n - 1) for n, d in enumerate(sleeps.delays, start=1))


async def test_retry_after_waits_in_real_time() -> None:
    """With the real clock and sleep, a retry waits (at least) the upstream's Retry-After."""
    caller = make_caller(time.monotonic, max_attempts=2)
    upstream = Upstream(Limited(0.05), "ok")
    started = time.monotonic()
    assert await caller.call(upstream, deadline=time.monotonic() + 2.0) == "ok"
    elapsed = time.monotonic() - started
    assert 0.045 <= elapsed < 1.0


@pytest.mark.parametrize(
    ("failure", "expected", "retry_delays"),
    [
        (Limited(3.0), (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED), [3.0]),
        (Limited(None), (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED), [1.0]),
        (Down("HTTP 503"), (UnavailableError, grpc.StatusCode.UNAVAILABLE), []),
        (Down("connection refused"), (UnavailableError, grpc.StatusCode.UNAVAILABLE), []),
        (Slow("read"), (DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED), []),
        (Down("HTTP 503: upstream timed out"), (UnavailableError, grpc.StatusCode.UNAVAILABLE), []),
    ],
    ids=["429-retry-after", "429-bare", "503", "refused", "timed-out", "text-says-timed-out"],
)
async def test_gives_up_after_max_attempts_with_mapped_error(
    clock: FakeClock,
    sleeps: Sleeps,
    failure: Exception,
    expected: tuple[type[PonderError], grpc.StatusCode],
    retry_delays: list[float],
) -> None:
    """After max_attempts the last failure becomes the PonderError with the right gRPC code
    (DEADLINE_EXCEEDED by the failure's type, never by words in its message)."""
    error_type, code = expected
    caller = make_caller(clock, max_attempts=3)
    upstream = Upstream(failure)
    with pytest.raises(PonderError) as caught:
        await caller.call(upstream, deadline=None)
    error = caught.value
    assert type(error) is error_type
    assert error.code is code
    assert UPSTREAM in error.message
    assert "3 attempt(s)" in error.message
    assert str(failure) in error.message
    assert error.__cause__ is failure
    _, delays = details(error)
    assert delays == [pytest.approx(d) for d in retry_delays]
    assert upstream.calls == 3
    assert len(sleeps.delays) == 2
    assert (caller.stats.calls, caller.stats.retries, caller.stats.failures) == (3, 2, 3)
    assert caller.limit.in_use == 0


async def test_rejected_is_not_retried(clock: FakeClock, sleeps: Sleeps) -> None:
    """A REJECTED failure is final at once: INTERNAL PonderError naming the upstream."""
    caller = make_caller(clock, max_attempts=5)
    rejection = Bad("HTTP 400: bad model name")
    upstream = Upstream(rejection, "never")
    with pytest.raises(PonderError) as caught:
        await caller.call(upstream, deadline=None)
    error = caught.value
    assert type(error) is PonderError
    assert error.code is grpc.StatusCode.INTERNAL
    assert error.metadata == {"upstream": UPSTREAM}
    assert UPSTREAM in error.message
    assert "HTTP 400: bad model name" in error.message
    assert error.__cause__ is rejection
    assert upstream.calls == 1
    assert sleeps.delays == []
    assert (caller.stats.calls, caller.stats.retries, caller.stats.failures) == (1, 0, 1)
    assert state(caller.breaker) is BreakerState.CLOSED


async def test_unclassified_exception_propagates_unchanged(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """An exception the classifier does not know is re-raised as is, without retries."""
    caller = make_caller(clock, max_attempts=5, failure_threshold=1)
    boom = ValueError("not an upstream failure")
    upstream = Upstream(boom, "never")
    with pytest.raises(ValueError, match="not an upstream failure") as caught:
        await caller.call(upstream, deadline=None)
    assert caught.value is boom
    assert upstream.calls == 1
    assert sleeps.delays == []
    assert (caller.stats.calls, caller.stats.retries, caller.stats.failures) == (1, 0, 0)
    assert state(caller.breaker) is BreakerState.CLOSED
    assert caller.limit.in_use == 0


async def test_per_attempt_timeout_bounded_by_deadline_and_call_timeout(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """Each attempt's timeout is min(call_timeout, time left); no sleep runs past the deadline."""
    caller = make_caller(clock, max_attempts=10, call_timeout=4.0)
    start = clock()
    deadline = start + 10.0
    upstream = Upstream(Limited(1.0), clock=clock, duration=2.5)
    with pytest.raises(ResourceExhaustedError):
        await caller.call(upstream, deadline=deadline)
    # t=0 call (4) .. t=2.5 fail, sleep 1 -> t=3.5 call (4) .. t=6, sleep -> t=7 call (3)
    # .. t=9.5 fail: a 1 s backoff would pass the deadline, so it gives up at once.
    assert upstream.timeouts == [4.0, 4.0, pytest.approx(3.0)]
    for begun, timeout in zip(upstream.started_at, upstream.timeouts, strict=True):
        assert timeout <= 4.0
        assert timeout <= deadline - begun
    assert sleeps.delays == [1.0, 1.0]
    assert clock() == pytest.approx(start + 9.5)


async def test_per_attempt_timeout_without_deadline_is_call_timeout(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """With no deadline every attempt gets exactly call_timeout."""
    caller = make_caller(clock, max_attempts=3, call_timeout=2.5)
    upstream = Upstream(Down("x"), Down("y"), "ok", clock=clock, duration=100.0)
    assert await caller.call(upstream, deadline=None) == "ok"
    assert upstream.timeouts == [2.5, 2.5, 2.5]


@pytest.mark.parametrize(
    ("time_left", "failure", "error_type"),
    [
        (1.0, Limited(5.0), ResourceExhaustedError),
        (1.0, Limited(1.0), ResourceExhaustedError),
        (0.2, Limited(0.3), ResourceExhaustedError),
        (0.001, Down("HTTP 503"), UnavailableError),
    ],
    ids=["far-past", "exactly-at", "just-past", "jittered-past"],
)
async def test_no_retry_when_backoff_reaches_deadline(
    clock: FakeClock,
    sleeps: Sleeps,
    time_left: float,
    failure: Exception,
    error_type: type[PonderError],
) -> None:
    """If the backoff would end at or after the deadline the caller raises at once."""
    caller = make_caller(clock, max_attempts=5, base_delay=1000.0, max_delay=1000.0)
    upstream = Upstream(failure, "never")
    with pytest.raises(error_type) as caught:
        await caller.call(upstream, deadline=clock() + time_left)
    assert "1 attempt(s)" in caught.value.message
    assert upstream.calls == 1
    assert sleeps.delays == []
    assert caller.stats.retries == 0


@pytest.mark.parametrize("overdue", [0.0, 0.5, 100.0])
async def test_deadline_already_passed_fails_without_calling(
    clock: FakeClock, sleeps: Sleeps, overdue: float
) -> None:
    """A deadline at or before now gives DEADLINE_EXCEEDED without touching the upstream."""
    caller = make_caller(clock)
    upstream = Upstream("never")
    with pytest.raises(DeadlineExceededError) as caught:
        await caller.call(upstream, deadline=clock() - overdue)
    assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert UPSTREAM in caught.value.message
    assert upstream.calls == 0
    assert caller.stats.calls == 0
    assert (caller.limit.in_use, caller.limit.peak_in_use) == (0, 0)
    assert state(caller.breaker) is BreakerState.CLOSED


async def test_slot_is_released_while_backing_off(clock: FakeClock, sleeps: Sleeps) -> None:
    """With limit=1, another caller uses the only slot while the first one backs off."""
    sleeps.gate = asyncio.Event()
    caller = make_caller(clock, limit=1, max_attempts=2)
    first = asyncio.create_task(caller.call(Upstream(Limited(0.5), "first"), deadline=None))
    try:
        for _ in range(20):
            if sleeps.delays:
                break
            await asyncio.sleep(0)
        assert sleeps.delays == [0.5]
        assert caller.limit.in_use == 0
        second = caller.call(Upstream("second"), deadline=None)
        assert await asyncio.wait_for(second, 1.0) == "second"
        sleeps.gate.set()
        assert await asyncio.wait_for(first, 1.0) == "first"
    finally:
        await cancel_all(first)
    assert caller.limit.peak_in_use == 1
    assert caller.limit.in_use == 0


async def test_caller_waits_for_slot_within_deadline() -> None:
    """A caller queued behind a busy slot gets DEADLINE_EXCEEDED when its deadline passes."""
    caller = make_caller(time.monotonic, limit=1)
    await caller.limit.acquire(None)
    upstream = Upstream("never")
    with pytest.raises(DeadlineExceededError):
        await caller.call(upstream, deadline=time.monotonic() + 0.02)
    assert upstream.calls == 0
    assert caller.limit.waiting == 0
    caller.limit.release()
    assert await caller.call(Upstream("ok"), deadline=time.monotonic() + 1.0) == "ok"


async def test_cancellation_propagates_releases_slot_and_spares_breaker(
    clock: FakeClock,
) -> None:
    """Cancelled callers get CancelledError, free the slot and never open the breaker."""
    caller = make_caller(clock, limit=1, failure_threshold=1)
    for _ in range(5):
        started = asyncio.Event()

        async def hang(timeout: float, started: asyncio.Event = started) -> str:
            started.set()
            await asyncio.Event().wait()
            return "never"

        task = asyncio.create_task(caller.call(hang, deadline=None))
        await asyncio.wait_for(started.wait(), 1.0)
        assert caller.limit.in_use == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (caller.limit.in_use, caller.limit.waiting) == (0, 0)
    assert state(caller.breaker) is BreakerState.CLOSED
    assert (caller.stats.failures, caller.stats.retries) == (0, 0)
    assert await asyncio.wait_for(caller.call(Upstream("ok"), deadline=None), 1.0) == "ok"


async def test_cancelled_half_open_trial_lets_the_next_trial_through(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """A half-open trial cancelled by its caller does not leave the breaker stuck."""
    caller = make_caller(clock, failure_threshold=1, reset_timeout=10, max_attempts=1)
    with pytest.raises(UnavailableError):
        await caller.call(Upstream(Down("HTTP 503")), deadline=None)
    clock.advance(10)
    started = asyncio.Event()

    async def hang(timeout: float) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    trial = asyncio.create_task(caller.call(hang, deadline=None))
    await asyncio.wait_for(started.wait(), 1.0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert await caller.call(Upstream("ok"), deadline=None) == "ok"
    assert state(caller.breaker) is BreakerState.CLOSED


async def test_open_breaker_fails_fast_without_calling(clock: FakeClock, sleeps: Sleeps) -> None:
    """Once the breaker is open, calls fail at once with UNAVAILABLE and never reach make."""
    caller = make_caller(clock, failure_threshold=2, reset_timeout=30, max_attempts=1)
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await caller.call(Upstream(Down("HTTP 503")), deadline=None)
    assert state(caller.breaker) is BreakerState.OPEN
    clock.advance(5)
    upstream = Upstream("never")
    calls_before = caller.stats.calls
    with pytest.raises(UnavailableError) as caught:
        await caller.call(upstream, deadline=clock() + 60)
    assert upstream.calls == 0
    assert caller.stats.calls == calls_before
    assert caught.value.retry_after_seconds == pytest.approx(25.0)
    info, _ = details(caught.value)
    assert dict(info.metadata) == {"circuit_breaker": "open"}
    assert caller.limit.in_use == 0


async def test_breaker_opening_mid_retries_stops_them(clock: FakeClock, sleeps: Sleeps) -> None:
    """When retries open the breaker, the next attempt fails fast instead of calling again."""
    caller = make_caller(clock, failure_threshold=2, reset_timeout=30, max_attempts=5)
    upstream = Upstream(Down("HTTP 503"))
    with pytest.raises(UnavailableError) as caught:
        await caller.call(upstream, deadline=None)
    assert upstream.calls == 2
    info, _ = details(caught.value)
    assert dict(info.metadata) == {"circuit_breaker": "open"}


async def test_rate_limits_through_caller_keep_breaker_closed(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """Calls that end in 429s never open the breaker."""
    caller = make_caller(clock, failure_threshold=1, max_attempts=3)
    for _ in range(3):
        with pytest.raises(ResourceExhaustedError):
            await caller.call(Upstream(Limited(0.1)), deadline=None)
    assert state(caller.breaker) is BreakerState.CLOSED
    assert caller.stats.failures == 9


async def test_breaker_rejections_are_counted(clock: FakeClock, sleeps: Sleeps) -> None:
    """Each call the open breaker turns away is counted in stats.rejected_by_breaker."""
    caller = make_caller(clock, failure_threshold=1, max_attempts=1)
    with pytest.raises(UnavailableError):
        await caller.call(Upstream(Down("HTTP 503")), deadline=None)
    for _ in range(3):
        with pytest.raises(UnavailableError):
            await caller.call(Upstream("never"), deadline=None)
    assert caller.stats.rejected_by_breaker == 3


# ---------------------------------------------------------------------------------------------
# Half-open trials that never report back (bugs)


@pytest.fixture
def hold_slot() -> Iterator[list[ConcurrencyLimit]]:
    """Slots taken on behalf of 'other callers'; released after the test."""
    held: list[ConcurrencyLimit] = []
    yield held
    for slots in held:
        slots.release()


@pytest.mark.parametrize("how", ["slot-timeout", "cancelled-in-queue"])
async def test_trial_that_never_got_a_slot_does_not_wedge_breaker(how: str) -> None:
    """A half-open trial that gave up waiting for a slot lets a later call try again."""
    clock = FakeClock()
    caller = make_caller(clock, limit=1, failure_threshold=1, reset_timeout=10, max_attempts=1)
    with pytest.raises(UnavailableError):
        await caller.call(Upstream(Down("HTTP 503")), deadline=None)
    clock.advance(10)
    await caller.limit.acquire(None)  # another, slow call holds the only slot
    try:
        if how == "slot-timeout":
            with pytest.raises(DeadlineExceededError):
                await caller.call(Upstream("never"), deadline=clock() + 0.02)
        else:
            queued = asyncio.create_task(caller.call(Upstream("never"), deadline=None))
            await settle()
            assert caller.limit.waiting == 1
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
    finally:
        caller.limit.release()
    clock.advance(100)
    assert await caller.call(Upstream("ok"), deadline=None) == "ok"


async def test_trial_ending_in_unclassified_error_does_not_wedge_breaker(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """A half-open trial that raised an unclassified exception lets a later call try again."""
    caller = make_caller(clock, failure_threshold=1, reset_timeout=10, max_attempts=1)
    with pytest.raises(UnavailableError):
        await caller.call(Upstream(Down("HTTP 503")), deadline=None)
    clock.advance(10)
    with pytest.raises(ValueError, match="bad JSON"):
        await caller.call(Upstream(ValueError("bad JSON")), deadline=None)
    clock.advance(100)
    assert await caller.call(Upstream("ok"), deadline=None) == "ok"


async def test_stale_cancelled_call_does_not_admit_a_second_trial(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """Cancelling a call started while closed does not let a second trial run beside the first."""
    caller = make_caller(clock, limit=3, failure_threshold=1, reset_timeout=10, max_attempts=1)
    a_started, b_started, b_go = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_a(timeout: float) -> str:
        a_started.set()
        await asyncio.Event().wait()
        return "never"

    async def trial_b(timeout: float) -> str:
        b_started.set()
        await b_go.wait()
        return "b"

    a = asyncio.create_task(caller.call(slow_a, deadline=None))
    b: asyncio.Task[str] | None = None
    try:
        await asyncio.wait_for(a_started.wait(), 1.0)
        with pytest.raises(UnavailableError):
            await caller.call(Upstream(Down("HTTP 503")), deadline=None)
        clock.advance(10)
        b = asyncio.create_task(caller.call(trial_b, deadline=None))
        await asyncio.wait_for(b_started.wait(), 1.0)
        with pytest.raises(UnavailableError):  # one trial at a time: correct so far
            await caller.call(Upstream("c"), deadline=None)
        a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await a
        with pytest.raises(UnavailableError):
            await caller.call(Upstream("c"), deadline=None)
    finally:
        b_go.set()
        await cancel_all(a, *([b] if b else []))


async def test_calls_retries_and_breaker_state_are_measured(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """Each call is timed by its final outcome, each retry counted by why, and the breaker's
    state is a gauge: 0 closed, 2 open (then calls end as breaker_open)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    caller = ResilientCaller(
        UPSTREAM,
        classify,
        limit=ConcurrencyLimit(4),
        breaker=CircuitBreaker(failure_threshold=3, reset_timeout=30.0, clock=clock),
        policy=RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=20.0),
        call_timeout=10.0,
        clock=clock,
        rng=random.Random(7),
        meter=MeterProvider(metric_readers=[reader]).get_meter("test"),
        sleep=clock.sleep,
    )

    def points() -> dict[tuple[str, str], Any]:
        data = reader.get_metrics_data()
        assert data is not None
        return {
            (metric.name, ",".join(str(v) for k, v in sorted((p.attributes or {}).items()))): p
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for p in metric.data.data_points
        }

    assert await caller.call(Upstream(Limited(0.1), "ok"), deadline=None) == "ok"
    assert points()[("ponder.upstream.breaker.state", f"closed,{UPSTREAM}")].value == 0
    with pytest.raises(UnavailableError):
        await caller.call(Upstream(Down("HTTP 503")), deadline=None)  # 3 attempts: opens
    with pytest.raises(UnavailableError):
        await caller.call(Upstream("never called"), deadline=None)
    found = points()
    assert found[("ponder.upstream.retries", f"rate_limited,{UPSTREAM}")].value == 1
    assert found[("ponder.upstream.retries", f"unavailable,{UPSTREAM}")].value == 2
    assert found[("ponder.upstream.duration", f"{UPSTREAM},ok")].count == 1
    assert found[("ponder.upstream.duration", f"{UPSTREAM},unavailable")].count == 1
    assert found[("ponder.upstream.duration", f"{UPSTREAM},breaker_open")].count == 1
    assert found[("ponder.upstream.breaker.state", f"open,{UPSTREAM}")].value == 2


# ---------------------------------------------------------------------------------------------
# Retries bounded by the deadline, and the retry budget


def budget_caller(clock: FakeClock, budget: RetryBudget, **kwargs: Any) -> ResilientCaller:
    """A caller like make_caller's with the given retry budget and a large attempt cap."""
    policy = RetryPolicy(max_attempts=kwargs.pop("max_attempts", 1000), base_delay=0.5)
    return ResilientCaller(
        UPSTREAM,
        classify,
        limit=ConcurrencyLimit(4),
        breaker=CircuitBreaker(failure_threshold=1000, reset_timeout=30.0, clock=clock),
        policy=policy,
        call_timeout=10.0,
        budget=budget,
        clock=clock,
        rng=random.Random(5),
        sleep=clock.sleep,
    )


async def test_retries_go_on_while_the_deadline_allows_another_attempt(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """Twenty 429s in a row (Retry-After 1 s) do not fail a call whose deadline is 60 s away:
    the count of failures is no reason to stop, only the time left."""
    caller = budget_caller(clock, RetryBudget(ratio=0.0, min_retries=100, clock=clock))
    upstream = Upstream(*[Limited(1.0) for _ in range(20)], "answer")
    assert await caller.call(upstream, deadline=clock() + 60.0) == "answer"
    assert upstream.calls == 21
    assert sleeps.delays == [1.0] * 20


async def test_retries_stop_when_the_deadline_leaves_too_little_for_an_attempt(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    """With 429s forever, the caller retries until the wait plus min_attempt_seconds would
    pass the deadline, then fails saying so (before the deadline, not after it)."""
    caller = budget_caller(clock, RetryBudget(ratio=0.0, min_retries=100, clock=clock))
    deadline = clock() + 10.2
    upstream = Upstream(*[Limited(1.0) for _ in range(50)])
    with pytest.raises(ResourceExhaustedError) as caught:
        await caller.call(upstream, deadline=deadline)
    # t=0..9: ten attempts with 1 s waits; at t=9, 1.2 s left: a 1 s wait leaves 0.2 < 0.5.
    assert upstream.calls == 10
    assert "the deadline leaves 1.2s, too little for another attempt" in caught.value.message
    assert clock() < deadline


async def test_the_attempt_cap_is_a_safety_net(clock: FakeClock, sleeps: Sleeps) -> None:
    """Without a deadline the cap ends the retries, and the error says it was the cap."""
    caller = budget_caller(
        clock, RetryBudget(ratio=0.0, min_retries=100, clock=clock), max_attempts=7
    )
    upstream = Upstream(*[Limited(0.1) for _ in range(50)])
    with pytest.raises(ResourceExhaustedError) as caught:
        await caller.call(upstream, deadline=None)
    assert upstream.calls == 7
    assert "the attempt cap (7) was reached" in caught.value.message


def test_the_budget_allows_a_fraction_of_recent_attempts() -> None:
    """Retries are allowed up to ratio x attempts of the window plus the minimum; old seconds
    leave the window, giving the budget back."""
    clock = FakeClock()
    budget = RetryBudget(ratio=0.5, min_retries=2, window=10, clock=clock)
    for _ in range(10):
        budget.record_attempt()
    granted = [budget.try_retry() for _ in range(10)]
    assert granted == [True] * 7 + [False] * 3  # 0.5 x 10 + 2
    assert budget.totals() == (10, 7)
    clock.advance(10.0)
    assert budget.totals() == (0, 0)
    assert [budget.try_retry() for _ in range(3)] == [True, True, False]


async def test_a_spent_budget_stops_a_retry_storm(clock: FakeClock, sleeps: Sleeps) -> None:
    """Against an upstream that only answers 429, many callers together retry at most
    ratio x their attempts (plus the minimum); each failed call says the budget was spent."""
    budget = RetryBudget(ratio=0.2, min_retries=5, window=1000, clock=clock)
    caller = budget_caller(clock, budget)
    upstreams = [Upstream(*[Limited(0.5) for _ in range(100)]) for _ in range(50)]
    messages = []
    for upstream in upstreams:
        with pytest.raises(ResourceExhaustedError) as caught:
            await caller.call(upstream, deadline=clock() + 1000.0)
        messages.append(caught.value.message)
    attempts = sum(u.calls for u in upstreams)
    assert caller.stats.retries == attempts - 50
    assert caller.stats.retries <= 0.2 * attempts + 5
    assert attempts <= 50 + 18  # R <= 0.2 (50 + R) + 5; without the budget: 100 attempts each
    assert caller.stats.budget_denied == 50
    assert all("the retry budget is spent" in m for m in messages)
