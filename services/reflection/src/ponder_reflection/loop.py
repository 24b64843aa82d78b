"""The bounded draft -> critique -> refine loop, as a stream of events or as one call."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from .citations import strip_invalid_citations, validate_citations
from .provider import Drafted, ReflectionProvider
from .types import (
    Completed,
    Critique,
    Iteration,
    ReflectionEvent,
    ReflectionOutcome,
    ReflectionSpec,
    Step,
    StepFinished,
    StepKind,
    StepStarted,
    StopReason,
    TextDelta,
    TokenUsage,
)


MAX_TOPIC_CHARS = 2000
MIN_ITERATIONS = 1
MAX_ITERATIONS = 5
MIN_SCORE = 0.0
MAX_SCORE = 10.0
MAX_DOCUMENTS = 50
NO_SOURCES_WARNING = "No source documents were supplied, so the text cites nothing"


class InvalidSpecError(ValueError):
    """A spec broke its bounds; `violations` lists (field, description) pairs."""

    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{field}: {text}" for field, text in self.violations))


def validate_spec(spec: ReflectionSpec) -> list[tuple[str, str]]:
    """Every bound `spec` breaks, as (field path, description) pairs; empty when valid.

    Field paths follow the request message: "topic", "max_iterations", "score_threshold",
    "documents" and "documents[i].id" (0-based i).
    """
    violations: list[tuple[str, str]] = []
    if not spec.topic.strip():
        violations.append(("topic", "must not be empty"))
    elif len(spec.topic) > MAX_TOPIC_CHARS:
        violations.append(
            ("topic", f"must be at most {MAX_TOPIC_CHARS} characters, got {len(spec.topic)}")
        )
    if not MIN_ITERATIONS <= spec.max_iterations <= MAX_ITERATIONS:
        violations.append(
            (
                "max_iterations",
                f"must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {spec.max_iterations}",
            )
        )
    threshold = spec.score_threshold
    if not (math.isfinite(threshold) and MIN_SCORE <= threshold <= MAX_SCORE):
        violations.append(
            ("score_threshold", f"must be between {MIN_SCORE:g} and {MAX_SCORE:g}, got {threshold}")
        )
    if len(spec.documents) > MAX_DOCUMENTS:
        violations.append(
            ("documents", f"must hold at most {MAX_DOCUMENTS} documents, got {len(spec.documents)}")
        )
    violations.extend(
        (f"documents[{i}].id", "must not be empty")
        for i, document in enumerate(spec.documents)
        if not document.id.strip()
    )
    return violations


def _stop_reason(critique: Critique, iteration: int, spec: ReflectionSpec) -> StopReason | None:
    if critique.score >= spec.score_threshold:
        return StopReason.SCORE_THRESHOLD_REACHED
    if not critique.issues:
        return StopReason.NO_ISSUES
    if iteration >= spec.max_iterations:
        return StopReason.MAX_ITERATIONS_REACHED
    return None


async def _deltas(
    call: Callable[..., Awaitable[Drafted]],
    kind: StepKind,
    iteration: int,
    stream: bool,
    written: list[Drafted],
) -> AsyncIterator[TextDelta]:
    """The text pieces of a DRAFT/REFINE call; its result is appended to `written`."""
    async for item in _write(call, kind, iteration, stream=stream):
        if isinstance(item, TextDelta):
            yield item
        else:
            written.append(item)


async def _write(
    call: Callable[..., Awaitable[Drafted]],
    kind: StepKind,
    iteration: int,
    *,
    stream: bool,
) -> AsyncIterator[TextDelta | Drafted]:
    """Run a DRAFT/REFINE call; while it runs, yield the text pieces a streaming provider
    hands over, then the Drafted result. Closing the generator cancels the call."""
    if not stream:
        yield await call()
        return
    pieces: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.ensure_future(call(on_delta=pieces.put_nowait))
    try:
        while True:
            getter = asyncio.ensure_future(pieces.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield TextDelta(kind, iteration, getter.result())
                continue
            getter.cancel()
            while not pieces.empty():
                yield TextDelta(kind, iteration, pieces.get_nowait())
            yield task.result()
            return
    finally:
        if not task.done():
            task.cancel()


async def run_reflection(
    provider: ReflectionProvider, spec: ReflectionSpec, *, stream_text: bool = False
) -> AsyncIterator[ReflectionEvent]:
    """Run the loop and stream its events.

    Iteration 1 drafts and critiques; each further iteration refines the last text and
    critiques the result. After every critique the loop stops when the score reaches
    `spec.score_threshold`, when the critique lists no issues, or after
    `spec.max_iterations` critiques. Every step yields `StepStarted` then `StepFinished`;
    the last event is `Completed`. Raises `InvalidSpecError` before any event when `spec`
    breaks its bounds; provider errors propagate.
    """
    violations = validate_spec(spec)
    if violations:
        raise InvalidSpecError(violations)
    started = time.perf_counter()
    topic, documents = spec.topic, spec.documents
    steps: list[Step] = []
    iterations: list[Iteration] = []
    warnings: list[str] = []

    yield StepStarted(StepKind.DRAFT, 1)
    clock = time.perf_counter()
    written: list[Drafted] = []
    draft = functools.partial(provider.draft, topic, documents)
    async for delta in _deltas(draft, StepKind.DRAFT, 1, stream_text, written):
        yield delta
    drafted = written.pop()
    steps.append(
        Step(StepKind.DRAFT, 1, drafted.text, None, drafted.usage, time.perf_counter() - clock)
    )
    warnings.extend(drafted.warnings)
    yield StepFinished(steps[-1])

    text, iteration = drafted.text, 1
    while True:
        yield StepStarted(StepKind.CRITIQUE, iteration)
        clock = time.perf_counter()
        critiqued = await provider.critique(topic, documents, text)
        critique = critiqued.critique
        latency = time.perf_counter() - clock
        steps.append(Step(StepKind.CRITIQUE, iteration, "", critique, critiqued.usage, latency))
        warnings.extend(critiqued.warnings)
        iterations.append(Iteration(iteration, text, critique))
        yield StepFinished(steps[-1])
        stop_reason = _stop_reason(critique, iteration, spec)
        if stop_reason is not None:
            break

        iteration += 1
        yield StepStarted(StepKind.REFINE, iteration)
        clock = time.perf_counter()
        refine = functools.partial(provider.refine, topic, documents, text, critique)
        async for delta in _deltas(refine, StepKind.REFINE, iteration, stream_text, written):
            yield delta
        refined = written.pop()
        latency = time.perf_counter() - clock
        steps.append(Step(StepKind.REFINE, iteration, refined.text, None, refined.usage, latency))
        warnings.extend(refined.warnings)
        yield StepFinished(steps[-1])
        text = refined.text

    final_text, removed = strip_invalid_citations(text, len(documents))
    if not documents:
        warnings.insert(0, NO_SOURCES_WARNING)
    warnings.extend(
        f"Removed citation [{index}] from the final text: it points to no supplied document"
        for index in removed
    )
    yield Completed(
        ReflectionOutcome(
            text=final_text,
            iterations=tuple(iterations),
            steps=tuple(steps),
            citations=validate_citations(final_text, documents).citations,
            usage=sum((step.usage for step in steps), TokenUsage()),
            provider=provider.name,
            model=provider.model,
            offline=provider.offline,
            score=iterations[-1].critique.score,
            stop_reason=stop_reason,
            warnings=tuple(dict.fromkeys(warnings)),
            latency_s=time.perf_counter() - started,
        )
    )


async def reflect(provider: ReflectionProvider, spec: ReflectionSpec) -> ReflectionOutcome:
    """Run the loop to completion and return its outcome (see `run_reflection`)."""
    outcome: ReflectionOutcome | None = None
    async for event in run_reflection(provider, spec):
        if isinstance(event, Completed):
            outcome = event.outcome
    if outcome is None:  # pragma: no cover - run_reflection always ends with Completed
        raise RuntimeError("the reflection loop ended without a Completed event")
    return outcome
