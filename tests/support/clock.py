"""A clock tests move by hand (injected where code takes a `clock`)."""

from __future__ import annotations


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now
