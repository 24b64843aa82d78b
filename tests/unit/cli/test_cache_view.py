"""The CLI says what the semantic cache decided for a workflow, and why."""

from __future__ import annotations

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_cli.render import cache_view, result_view


def test_a_refused_candidate_is_shown_with_the_verifiers_reason() -> None:
    """A miss whose closest cached topic the verifier refused names that topic, the
    similarity and the reason."""
    cache = pb.CacheInfo(
        verdict=pb.CACHE_VERDICT_REJECTED,
        similarity=0.97,
        candidate_topic="Why does self-consistency improve reasoning?",
        reason='polarity differs ("fail")',
        reason_category="polarity",
    )
    assert cache_view(cache).plain == (
        'cache: not served; closest cached topic "Why does self-consistency improve '
        'reasoning?" (similarity 0.97) was refused: polarity differs ("fail")'
    )


def test_a_hit_names_the_workflow_it_reused() -> None:
    """A verified hit names the source workflow, the cached topic and the reason."""
    cache = pb.CacheInfo(
        hit=True,
        verdict=pb.CACHE_VERDICT_ACCEPTED,
        similarity=0.91,
        source_workflow="workflows/abc",
        candidate_topic="What makes chain of thought prompting effective?",
        reason="same content words after normalisation",
    )
    assert cache_view(cache).plain == (
        'cache: served from workflows/abc, cached as "What makes chain of thought prompting '
        'effective?" (similarity 0.91): same content words after normalisation'
    )


def test_misses_say_why_and_no_lookup_says_nothing() -> None:
    """Below the threshold and an empty namespace each get their own words; a workflow that
    made no lookup (BYPASS, REFRESH) shows no cache line."""
    below = pb.CacheInfo(
        verdict=pb.CACHE_VERDICT_BELOW_THRESHOLD, similarity=0.41, candidate_topic="RLHF"
    )
    assert cache_view(below).plain == (
        'cache: miss; closest cached topic "RLHF" (similarity 0.41) is not similar enough'
    )
    empty = pb.CacheInfo(verdict=pb.CACHE_VERDICT_EMPTY)
    assert cache_view(empty).plain == "cache: nothing cached yet in this namespace"
    assert cache_view(pb.CacheInfo()).plain == ""
    workflow = pb.Workflow(topic="t", state=pb.WORKFLOW_STATE_SUCCEEDED, cache=below)
    assert any(
        getattr(part, "plain", "").startswith("cache: miss")
        for part in result_view(workflow).renderables
    )
