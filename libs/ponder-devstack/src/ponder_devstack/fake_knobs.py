"""The knobs every fake server shares (`Behaviour`): latency, failures, rate limits, hangs."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Behaviour:
    """What a fake does with the next calls; tests change it between (or during) calls.

    Each fake applies the knobs to every call of a known endpoint, in this order: `hang`,
    `latency`, `fail_next` then `error_fraction`, `status`, `rate_limit_fraction`. Counters
    and seeded draws are consumed under a lock, so `update()` is atomic for the server.
    """

    latency: float = 0.0  # seconds before each reply
    status: int = 200  # any other value: every call answers this HTTP status
    rate_limit_fraction: float = 0.0  # this fraction of calls answer 429 (seeded, deterministic)
    retry_after: str = ""  # the 429's Retry-After header ("" sends none)
    seed: int = 0  # seeds the draws; changing it restarts the sequence
    fail_next: int = 0  # the next N calls answer `status_when_failing`
    error_fraction: float = 0.0  # this fraction of calls answer `status_when_failing` (seeded)
    status_when_failing: int = 500
    hang: bool = False  # never answer; wait until the client goes away
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _rng: random.Random | None = field(default=None, init=False, repr=False)
    _rng_seed: int | None = field(default=None, init=False, repr=False)

    def update(self, **changes: Any) -> None:
        """Set several knobs at once, atomically with respect to the server."""
        knobs = {f.name for f in fields(self) if f.init}
        unknown = sorted(set(changes) - knobs)
        if unknown:
            raise AttributeError(f"Behaviour has no knob {', '.join(unknown)}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def failing_status(self) -> int | None:
        """The error status this call answers: a `fail_next` or `error_fraction` failure
        (consumed), else `status` unless it is 200; None when the call succeeds."""
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return self.status_when_failing
            if self.error_fraction > 0 and self._draw() < self.error_fraction:
                return self.status_when_failing
        return self.status if self.status != 200 else None

    def take_rate_limit(self) -> bool:
        """Whether this call is rate limited (one seeded draw when the fraction is set)."""
        with self._lock:
            return self.rate_limit_fraction > 0 and self._draw() < self.rate_limit_fraction

    def _draw(self) -> float:
        """The next seeded random number in [0, 1) (the caller holds the lock)."""
        if self._rng is None or self._rng_seed != self.seed:
            self._rng, self._rng_seed = random.Random(self.seed), self.seed
        return self._rng.random()
