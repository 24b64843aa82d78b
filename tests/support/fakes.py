"""Making the shared fake upstream APIs misbehave for a while."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ponder_devstack.fake_apis import Behaviour, FakeApi


@contextlib.contextmanager
def behaving(api: FakeApi, **changes: object) -> Iterator[None]:
    """Let a shared fake API misbehave for the duration of a block."""
    api.behaviour = Behaviour(**changes)  # type: ignore[arg-type]
    try:
        yield
    finally:
        api.behaviour = Behaviour()
