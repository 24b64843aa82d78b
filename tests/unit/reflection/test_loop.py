"""The draft -> critique -> refine loop: stop rules, event order, outcome assembly."""

import pytest

from ponder_reflection.loop import (
    NO_SOURCES_WARNING,
    InvalidSpecError,
    reflect,
    run_reflection,
)
from ponder_reflection.offline import OfflineProvider
from ponder_reflection.types import (
    Citation,
    Completed,
    Critique,
    ReflectionEvent,
    ReflectionOutcome,
    ReflectionSpec,
    SourceDocument,
    StepFinished,
    StepKind,
    StepStarted,
    StopReason,
    TextDelta,
    TokenUsage,
)
from tests.support.reflection import RAG_TOPIC, ScriptedProvider, needs_work


pytestmark = pytest.mark.asyncio


def spec(
    documents: tuple[SourceDocument, ...], max_iterations: int = 3, threshold: float = 8.0
) -> ReflectionSpec:
    """A spec about RAG over `documents`."""
    return ReflectionSpec(RAG_TOPIC, documents, max_iterations, threshold)


async def collect(provider: object, reflection_spec: ReflectionSpec) -> list[ReflectionEvent]:
    """All events of one run."""
    assert isinstance(provider, OfflineProvider | ScriptedProvider)
    return [event async for event in run_reflection(provider, reflection_spec)]


def outcome_of(events: list[ReflectionEvent]) -> ReflectionOutcome:
    """The outcome carried by the last event."""
    last = events[-1]
    assert isinstance(last, Completed)
    return last.outcome


def without_timing(outcome: ReflectionOutcome) -> tuple[object, ...]:
    """Everything in an outcome except wall-clock latencies."""
    steps = tuple((s.kind, s.iteration, s.text, s.critique, s.usage) for s in outcome.steps)
    return (
        outcome.text,
        outcome.iterations,
        steps,
        outcome.citations,
        outcome.usage,
        outcome.score,
        outcome.stop_reason,
        outcome.warnings,
        (outcome.provider, outcome.model, outcome.offline),
    )


async def test_stops_after_first_critique_when_threshold_is_reached(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """With threshold 0 the first critique already suffices: draft, critique, stop."""
    outcome = await reflect(provider, spec(documents, threshold=0.0))
    assert outcome.stop_reason is StopReason.SCORE_THRESHOLD_REACHED
    assert [s.kind for s in outcome.steps] == [StepKind.DRAFT, StepKind.CRITIQUE]
    assert len(outcome.iterations) == 1
    assert outcome.text == outcome.iterations[0].draft


async def test_runs_to_max_iterations_when_threshold_is_out_of_reach(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """A threshold of 10 that the sources cannot meet runs every allowed iteration."""
    outcome = await reflect(provider, spec(documents, max_iterations=3, threshold=10.0))
    assert outcome.stop_reason is StopReason.MAX_ITERATIONS_REACHED
    assert [(s.kind, s.iteration) for s in outcome.steps] == [
        (StepKind.DRAFT, 1),
        (StepKind.CRITIQUE, 1),
        (StepKind.REFINE, 2),
        (StepKind.CRITIQUE, 2),
        (StepKind.REFINE, 3),
        (StepKind.CRITIQUE, 3),
    ]
    scores = [it.critique.score for it in outcome.iterations]
    assert scores == sorted(scores)
    assert scores[-1] > scores[0]
    assert outcome.score == scores[-1] < 10.0


async def test_stops_when_score_reaches_threshold_after_refining() -> None:
    """A refined text that meets the threshold ends the loop before max iterations."""
    provider = ScriptedProvider(["draft [1].", "better [1]."], [needs_work(5.0), needs_work(9.0)])
    outcome = await reflect(provider, spec((), max_iterations=5, threshold=8.0))
    assert outcome.stop_reason is StopReason.SCORE_THRESHOLD_REACHED
    assert [it.draft for it in outcome.iterations] == ["draft [1].", "better [1]."]
    assert provider.refined_with == [needs_work(5.0)]
    assert outcome.score == 9.0


async def test_a_score_equal_to_the_threshold_is_enough() -> None:
    """The threshold is inclusive: a score of exactly 8.0 stops a loop with threshold 8.0."""
    provider = ScriptedProvider(["draft [1]."], [needs_work(8.0)])
    outcome = await reflect(provider, spec((), max_iterations=5, threshold=8.0))
    assert outcome.stop_reason is StopReason.SCORE_THRESHOLD_REACHED
    assert len(outcome.iterations) == 1


async def test_stops_when_critique_lists_no_issues() -> None:
    """A critique without issues ends the loop even below the threshold."""
    provider = ScriptedProvider(["draft."], [Critique(6.0, (), ())])
    outcome = await reflect(provider, spec((), max_iterations=5, threshold=9.0))
    assert outcome.stop_reason is StopReason.NO_ISSUES
    assert [kind for kind, _ in provider.calls] == ["draft", "critique"]


async def test_events_come_in_order_with_completed_last(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Each step starts then finishes before the next starts; Completed is last and single."""
    events = await collect(provider, spec(documents, max_iterations=2, threshold=10.0))
    *step_events, last = events
    assert isinstance(last, Completed)
    assert not any(isinstance(e, Completed) for e in step_events)
    assert len(step_events) % 2 == 0
    finished = []
    for started, done in zip(step_events[::2], step_events[1::2], strict=True):
        assert isinstance(started, StepStarted)
        assert isinstance(done, StepFinished)
        assert (started.kind, started.iteration) == (done.step.kind, done.step.iteration)
        finished.append(done.step)
    assert tuple(finished) == last.outcome.steps


async def test_steps_carry_text_and_critiques_by_kind(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Draft and refine steps carry text only; critique steps carry the critique only."""
    outcome = await reflect(provider, spec(documents, max_iterations=2, threshold=10.0))
    draft, first_critique, refine, second_critique = outcome.steps
    assert draft.text == outcome.iterations[0].draft
    assert draft.critique is None
    assert first_critique.text == ""
    assert first_critique.critique == outcome.iterations[0].critique
    assert refine.text == outcome.iterations[1].draft
    assert refine.critique is None
    assert second_critique.critique == outcome.iterations[1].critique


async def test_final_text_drops_invalid_citations_and_maps_valid_ones(
    documents: tuple[SourceDocument, ...],
) -> None:
    """Markers past the document list are removed and warned about; valid ones resolve."""
    provider = ScriptedProvider(
        ["RAG grounds answers [1]. It also cures cancer [7]."], [needs_work(9)]
    )
    outcome = await reflect(provider, spec(documents, threshold=8.0))
    assert outcome.text == "RAG grounds answers [1]. It also cures cancer."
    assert outcome.citations == (
        Citation(
            1,
            "arxiv:2005.11401",
            "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
            "https://arxiv.org/abs/2005.11401",
        ),
    )
    assert any("[7]" in warning for warning in outcome.warnings)
    assert outcome.iterations[0].draft.endswith("[7].")


async def test_usage_is_summed_over_steps() -> None:
    """The outcome's usage adds up the usage of every step."""
    provider = ScriptedProvider(["a [1].", "b [1]."], [needs_work(1.0), needs_work(2.0)])
    outcome = await reflect(provider, spec((), max_iterations=2, threshold=10.0))
    assert outcome.usage == TokenUsage(10 + 20 + 30 + 20, 5 + 3 + 7 + 3)
    assert outcome.usage.total_tokens == 98


async def test_outcome_names_the_provider_and_keeps_its_warnings() -> None:
    """Provider, model and offline flag are copied; provider warnings appear once each."""
    provider = ScriptedProvider(["a."], [needs_work(9.0)], warnings=("reply was repaired",))
    outcome = await reflect(provider, spec((), threshold=8.0))
    assert (outcome.provider, outcome.model, outcome.offline) == ("scripted", "script-1", False)
    assert outcome.warnings.count("reply was repaired") == 1


async def test_latency_is_measured_per_step_and_overall() -> None:
    """Each step's latency covers its provider call; the total covers all steps."""
    provider = ScriptedProvider(["a."], [needs_work(9.0)], delay_s=0.02)
    outcome = await reflect(provider, spec((), threshold=8.0))
    assert all(step.latency_s >= 0.015 for step in outcome.steps)
    assert outcome.latency_s >= sum(step.latency_s for step in outcome.steps)


async def test_two_runs_give_the_same_outcome(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """The offline loop is deterministic apart from wall-clock latencies."""
    first = await reflect(provider, spec(documents, max_iterations=3, threshold=10.0))
    second = await reflect(OfflineProvider(), spec(documents, max_iterations=3, threshold=10.0))
    assert without_timing(first) == without_timing(second)


async def test_stream_and_reflect_agree(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """`reflect` returns the outcome the stream completes with."""
    streamed = outcome_of(await collect(provider, spec(documents)))
    returned = await reflect(provider, spec(documents))
    assert without_timing(streamed) == without_timing(returned)


async def test_zero_documents_are_reported_honestly(provider: OfflineProvider) -> None:
    """Without sources the outcome cites nothing, scores low and warns."""
    outcome = await reflect(provider, spec((), max_iterations=2, threshold=8.0))
    assert outcome.warnings[0] == NO_SOURCES_WARNING
    assert outcome.citations == ()
    assert outcome.score <= 2.0
    assert "No sources were supplied" in outcome.text
    assert outcome.stop_reason is StopReason.MAX_ITERATIONS_REACHED
    assert outcome.offline


async def test_invalid_spec_raises_before_any_event() -> None:
    """A spec out of bounds raises InvalidSpecError and calls no provider method."""
    provider = ScriptedProvider(["a."], [needs_work(9.0)])
    bad = ReflectionSpec(" ", (), 9, 8.0)
    with pytest.raises(InvalidSpecError, match="max_iterations") as raised:
        await collect(provider, bad)
    assert [name for name, _ in raised.value.violations] == ["topic", "max_iterations"]
    assert provider.calls == []


@pytest.mark.parametrize("iterations", [-1, 0])
async def test_a_bad_iteration_count_names_only_that_field(iterations: int) -> None:
    """max_iterations out of range, with no completed steps, is a violation of max_iterations
    alone (Reflect has no completed_steps field to blame; found by the fuzz suite)."""
    bad = ReflectionSpec("self-reflection", (), iterations, 8.0)
    with pytest.raises(InvalidSpecError) as raised:
        await collect(ScriptedProvider(["a."], [needs_work(9.0)]), bad)
    assert [name for name, _ in raised.value.violations] == ["max_iterations"]


async def test_streamed_text_arrives_between_start_and_finish_of_its_step() -> None:
    """With stream_text, the draft's pieces come after its StepStarted and before its
    StepFinished, and add up to its text."""
    provider = ScriptedProvider(["Claim one [1]. Claim two [1]."], [needs_work(9.5)])
    spec = ReflectionSpec("topic", (SourceDocument("a", "A", "Text."),), 2, 8.0)
    events = [event async for event in run_reflection(provider, spec, stream_text=True)]
    kinds = [type(event).__name__ for event in events]
    start, finish = kinds.index("StepStarted"), kinds.index("StepFinished")
    pieces = [e.text for e in events[start + 1 : finish] if isinstance(e, TextDelta)]
    assert len(pieces) > 1
    assert "".join(pieces).strip() == "Claim one [1]. Claim two [1]."
    assert kinds[-1] == "Completed"
    assert "TextDelta" not in kinds[finish:]


async def test_a_resumed_run_pays_no_finished_step_again() -> None:
    """Given the steps an interrupted run finished (draft, critique), a resumed run calls the
    provider only for what is left and ends with the same outcome as an uninterrupted run."""
    texts = ["Draft [1].", "Refined [1].", "Final [1]."]
    critiques = [needs_work(4.0), needs_work(6.0), needs_work(7.0)]
    whole = ScriptedProvider(texts, critiques)
    full = outcome_of(await collect(whole, spec(()))).steps
    resumed = ScriptedProvider(texts, critiques[1:])
    events = [
        event
        async for event in run_reflection(
            resumed, ReflectionSpec(RAG_TOPIC, (), 3, 8.0, completed=full[:2])
        )
    ]
    assert [kind for kind, _ in resumed.calls] == ["refine", "critique", "refine", "critique"]
    outcome = outcome_of(events)
    assert [(s.kind, s.iteration, s.text) for s in outcome.steps] == [
        (s.kind, s.iteration, s.text) for s in full
    ]
    assert outcome.score == 7.0
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert finished[0].step == full[0]
