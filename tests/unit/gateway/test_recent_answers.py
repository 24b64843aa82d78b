"""The gateway's first-level cache of exact repeats: bounded in age (never past its cache
entry's own expiry) and size; emptied on an invalidation."""

from __future__ import annotations

import pytest

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.cache import CachedWorkflow, RecentAnswers
from tests.support.clock import Clock


def answer(name: str) -> CachedWorkflow:
    """A cached workflow called `name`."""
    return CachedWorkflow(pb.Workflow(name=name), 1.0)


def test_exact_topic_and_namespace_only():
    """Only the same topic in the same namespace is an exact repeat."""
    recent = RecentAnswers(seconds=30, max_entries=10)
    recent.put("ns-a", "topic", answer("workflows/a"))
    found = recent.get("ns-a", "topic")
    assert found is not None
    assert found.workflow.name == "workflows/a"
    assert recent.get("ns-b", "topic") is None
    assert recent.get("ns-a", "topic ") is None


def test_entries_expire():
    """An answer is served for `seconds` after it was kept, then no more."""
    clock = Clock()
    recent = RecentAnswers(seconds=30, max_entries=10, clock=clock)
    recent.put("ns", "topic", answer("workflows/a"))
    clock.now += 29.9
    assert recent.get("ns", "topic") is not None
    clock.now += 0.2
    assert recent.get("ns", "topic") is None


def test_the_least_recently_used_goes_first_when_full():
    """When full, the entry least recently kept or read makes room (one LRU rule)."""
    recent = RecentAnswers(seconds=30, max_entries=2)
    for topic in ("one", "two", "three"):
        recent.put("ns", topic, answer(f"workflows/{topic}"))
    assert recent.get("ns", "one") is None
    assert recent.get("ns", "two") is not None
    assert recent.get("ns", "three") is not None
    assert recent.get("ns", "two") is not None  # read: now "three" is the least recent
    recent.put("ns", "four", answer("workflows/four"))
    assert recent.get("ns", "three") is None
    assert recent.get("ns", "two") is not None


@pytest.mark.parametrize(("seconds", "entries"), [(0, 10), (30, 0)])
def test_turned_off(seconds: float, entries: int):
    """No age or no room: nothing is kept."""
    recent = RecentAnswers(seconds=seconds, max_entries=entries)
    recent.put("ns", "topic", answer("workflows/a"))
    assert recent.get("ns", "topic") is None


def test_never_served_past_its_cache_entry_expiry():
    """An answer whose cache entry expires in 5 s goes after 5 s, not after `seconds`; one
    whose entry has already expired is not kept at all."""
    clock = Clock()
    recent = RecentAnswers(seconds=30, max_entries=10, clock=clock)
    recent.put("ns", "soon", CachedWorkflow(pb.Workflow(name="workflows/a"), 1.0, expires_in=5))
    recent.put("ns", "gone", CachedWorkflow(pb.Workflow(name="workflows/b"), 1.0, expires_in=0))
    recent.put("ns", "later", answer("workflows/c"))
    assert recent.get("ns", "gone") is None
    clock.now += 4.9
    assert recent.get("ns", "soon") is not None
    clock.now += 0.2
    assert recent.get("ns", "soon") is None
    assert recent.get("ns", "later") is not None


def test_forget_all_drops_every_answer():
    """After an invalidation through this gateway nothing is served from memory."""
    recent = RecentAnswers(seconds=30, max_entries=10)
    recent.put("ns-a", "one", answer("workflows/a"))
    recent.put("ns-b", "two", answer("workflows/b"))
    recent.forget_all()
    assert recent.get("ns-a", "one") is None
    assert recent.get("ns-b", "two") is None
