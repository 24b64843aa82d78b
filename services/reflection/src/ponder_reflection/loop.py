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
    # The passages of one document count as that one document.
    count = len({d.id for d in spec.documents if d.passage is not None}) + sum(
        1 for d in spec.documents if d.passage is None
    )
    if count > MAX_DOCUMENTS:
        violations.append(
            ("documents", f"must hold at most {MAX_DOCUMENTS} documents, got {count}")
        )
    violations.extend(
        (f"documents[{i}].id", "must not be empty")
        for i, document in enumerate(spec.documents)
        if not document.id.strip()
    )
    if spec.completed and len(spec.completed) > 2 * max(spec.max_iterations, 0):
        violations.append(
            (
                "completed_steps",
                f"must hold at most {2 * spec.max_iterations} steps (one whole run), "
                f"got {len(spec.completed)}",
            )
        )
    violations.extend(
        (f"completed_steps[{i}].critique", "must be set on a CRITIQUE step")
        for i, step in enumerate(spec.completed)
        if step.kind == StepKind.CRITIQUE and step.critique is None
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


class _Replay:
    """The steps an interrupted run already finished (ReflectionSpec.completed), taken in
    order while they match the loop's own steps."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = list(steps)

    def take(self, kind: StepKind, iteration: int) -> Step | None:
        """The finished step for (kind, iteration), when it is the next one recorded."""
        if self._steps and (self._steps[0].kind, self._steps[0].iteration) == (kind, iteration):
            return self._steps.pop(0)
        return None


async def _text_step(
    prior: Step | None,
    call: Callable[..., Awaitable[Drafted]],
    where: tuple[StepKind, int],
    stream: bool,
    *,
    steps: list[Step],
    warnings: list[str],
) -> AsyncIterator[TextDelta]:
    """A DRAFT/REFINE step: `prior` (finished by an interrupted run) or the call, whose text
    pieces are yielded; the step goes on `steps`."""
    if prior is not None:
        steps.append(prior)
        return
    kind, iteration = where
    clock = time.perf_counter()
    written: list[Drafted] = []
    async for delta in _deltas(call, kind, iteration, stream, written):
        yield delta
    drafted = written.pop()
    latency = time.perf_counter() - clock
    steps.append(Step(kind, iteration, drafted.text, None, drafted.usage, latency))
    warnings.extend(drafted.warnings)


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
    the last event is `Completed`. Steps in `spec.completed` (those an interrupted run
    finished) are streamed again without calling the provider. Raises `InvalidSpecError`
    before any event when `spec` breaks its bounds; provider errors propagate.
    """
    violations = validate_spec(spec)
    if violations:
        raise InvalidSpecError(violations)
    started = time.perf_counter()
    topic, documents = spec.topic, spec.documents
    steps: list[Step] = []
    iterations: list[Iteration] = []
    warnings: list[str] = []

    replay = _Replay(spec.completed)

    yield StepStarted(StepKind.DRAFT, 1)
    draft = functools.partial(provider.draft, topic, documents)
    prior = replay.take(StepKind.DRAFT, 1)
    where = (StepKind.DRAFT, 1)
    async for delta in _text_step(prior, draft, where, stream_text, steps=steps, warnings=warnings):
        yield delta
    yield StepFinished(steps[-1])

    text, iteration = steps[-1].text, 1
    while True:
        yield StepStarted(StepKind.CRITIQUE, iteration)
        prior = replay.take(StepKind.CRITIQUE, iteration)
        if prior is not None and prior.critique is not None:
            steps.append(prior)
        else:
            clock = time.perf_counter()
            critiqued = await provider.critique(topic, documents, text)
            latency = time.perf_counter() - clock
            steps.append(
                Step(StepKind.CRITIQUE, iteration, "", critiqued.critique, critiqued.usage, latency)
            )
            warnings.extend(critiqued.warnings)
        critique = steps[-1].critique
        assert critique is not None  # a CRITIQUE step always has one
        iterations.append(Iteration(iteration, text, critique))
        yield StepFinished(steps[-1])
        stop_reason = _stop_reason(critique, iteration, spec)
        if stop_reason is not None:
            break

        iteration += 1
        yield StepStarted(StepKind.REFINE, iteration)
        refine = functools.partial(provider.refine, topic, documents, text, critique)
        prior = replay.take(StepKind.REFINE, iteration)
        where = (StepKind.REFINE, iteration)
        async for delta in _text_step(
            prior, refine, where, stream_text, steps=steps, warnings=warnings
        ):
            yield delta
        yield StepFinished(steps[-1])
        text = steps[-1].text

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
