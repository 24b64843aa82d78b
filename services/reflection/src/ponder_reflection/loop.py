"""The bounded draft -> critique -> refine loop, as a stream of events or as one call."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from .budget import (
    FREE,
    Budget,
    BudgetExhaustedError,
    BudgetTooSmallError,
    Limits,
    PriceTable,
    budget_in_force,
)
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
MAX_BUDGET_TOKENS = 10_000_000
MAX_BUDGET_USD = 1000.0
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
    if not 0 <= spec.max_tokens <= MAX_BUDGET_TOKENS:
        violations.append(
            ("max_tokens", f"must be between 0 and {MAX_BUDGET_TOKENS}, got {spec.max_tokens}")
        )
    if not (math.isfinite(spec.max_cost_usd) and 0 <= spec.max_cost_usd <= MAX_BUDGET_USD):
        violations.append(
            (
                "max_cost_usd",
                f"must be between 0 and {MAX_BUDGET_USD:g}, got {spec.max_cost_usd}",
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


def _budget(
    provider: ReflectionProvider, spec: ReflectionSpec, prices: PriceTable | None
) -> Budget:
    """The spec's budget, priced for the provider's model (the offline provider is free);
    BudgetTooSmallError when a cost limit meets a model without a price."""
    price = FREE if provider.offline else (prices.price(provider.model) if prices else None)
    return Budget(Limits(spec.max_tokens, spec.max_cost_usd), price)


def _refine_estimate(
    provider: ReflectionProvider, spec: ReflectionSpec, text: str, critique: Critique
) -> TokenUsage:
    """A refine and the critique of its text together: the refine's prompt and output, and
    the critique's prompt (the refined text is at most the refine's output) and output."""
    refine = provider.estimate(StepKind.REFINE, spec.topic, spec.documents, text, critique)
    after = provider.estimate(StepKind.CRITIQUE, spec.topic, spec.documents, text)
    return TokenUsage(
        refine.prompt_tokens + after.prompt_tokens + refine.completion_tokens,
        refine.completion_tokens + after.completion_tokens,
    )


async def run_reflection(
    provider: ReflectionProvider,
    spec: ReflectionSpec,
    *,
    stream_text: bool = False,
    prices: PriceTable | None = None,
) -> AsyncIterator[ReflectionEvent]:
    """Run the loop and stream its events.

    Iteration 1 drafts and critiques; each further iteration refines the last text and
    critiques the result. After every critique the loop stops when the score reaches
    `spec.score_threshold`, when the critique lists no issues, or after
    `spec.max_iterations` critiques. Every step yields `StepStarted` then `StepFinished`;
    the last event is `Completed`. Steps in `spec.completed` (those an interrupted run
    finished) are streamed again without calling the provider.

    With `spec.max_tokens` or `spec.max_cost_usd` (priced by `prices`), no model call starts
    that could go over: before each, the provider's estimate (prompt counted, output at its
    maximum; a refine together with the critique after it) is checked against what is left,
    and when it does not fit the loop stops with the text so far (BUDGET_EXHAUSTED and a
    warning). Raises `InvalidSpecError` before any event when `spec` breaks its bounds, and
    `BudgetTooSmallError` when the budget cannot pay for the first draft; provider errors
    propagate.
    """
    violations = validate_spec(spec)
    if violations:
        raise InvalidSpecError(violations)
    run = _Run(provider, spec, _budget(provider, spec, prices), stream_text)
    async for event in run.events():
        yield event


class _Run:
    """One run of the loop: its steps, iterations, warnings and budget so far."""

    def __init__(
        self, provider: ReflectionProvider, spec: ReflectionSpec, budget: Budget, stream: bool
    ) -> None:
        self._provider = provider
        self._spec = spec
        self._budget = budget
        self._stream = stream
        self._replay = _Replay(spec.completed)
        self._started = time.perf_counter()
        self.steps: list[Step] = []
        self.iterations: list[Iteration] = []
        self.warnings: list[str] = []

    async def events(self) -> AsyncIterator[ReflectionEvent]:
        """Draft, then critique and refine until a stop reason; then Completed."""
        async for event in self._draft():
            yield event
        text, iteration = self.steps[-1].text, 1
        stop: StopReason | None = None
        while stop is None:
            try:
                async for event in self._critique(text, iteration):
                    yield event
                critique = self.iterations[-1].critique
                stop = _stop_reason(critique, iteration, self._spec)
                if stop is None:
                    iteration += 1
                    async for event in self._refine(text, critique, iteration):
                        yield event
                    text = self.steps[-1].text
            except BudgetExhaustedError as exc:
                self.warnings.append(str(exc))
                stop = StopReason.BUDGET_EXHAUSTED
        yield Completed(self._outcome(text, stop))

    def _outcome(self, text: str, stop_reason: StopReason) -> ReflectionOutcome:
        """The outcome of the finished loop, whose last text is `text`."""
        steps, iterations, warnings = self.steps, self.iterations, self.warnings
        provider, documents = self._provider, self._spec.documents
        final_text, removed = strip_invalid_citations(text, len(documents))
        if not documents:
            warnings.insert(0, NO_SOURCES_WARNING)
        warnings.extend(
            f"Removed citation [{index}] from the final text: it points to no supplied document"
            for index in removed
        )
        return ReflectionOutcome(
            text=final_text,
            iterations=tuple(iterations),
            steps=tuple(steps),
            citations=validate_citations(final_text, documents).citations,
            usage=sum((step.usage for step in steps), TokenUsage()),
            provider=provider.name,
            model=provider.model,
            offline=provider.offline,
            score=iterations[-1].critique.score if iterations else 0.0,
            stop_reason=stop_reason,
            warnings=tuple(dict.fromkeys(warnings)),
            latency_s=time.perf_counter() - self._started,
        )

    async def _text_step(
        self,
        prior: Step | None,
        call: Callable[..., Awaitable[Drafted]],
        kind: StepKind,
        iteration: int,
    ) -> AsyncIterator[TextDelta]:
        """A DRAFT/REFINE step: `prior` (finished by an interrupted run) or the call, whose
        text pieces are yielded; the step goes on `steps`."""
        if prior is not None:
            self.steps.append(prior)
            return
        clock = time.perf_counter()
        drafted: Drafted | None = None
        async for item in _write(call, kind, iteration, stream=self._stream):
            if isinstance(item, TextDelta):
                yield item
            else:
                drafted = item
        assert drafted is not None  # _write ends with the call's result
        latency = time.perf_counter() - clock
        self.steps.append(Step(kind, iteration, drafted.text, None, drafted.usage, latency))
        self.warnings.extend(drafted.warnings)

    def _account(self, fresh: bool) -> None:
        """Price the step just finished (a new one) and count it against the budget."""
        if fresh:
            step = self.steps[-1]
            self.steps[-1] = dataclasses.replace(step, usage=self._budget.priced(step.usage))
        self._budget.spend(self.steps[-1].usage)

    async def _draft(self) -> AsyncIterator[ReflectionEvent]:
        """The DRAFT step; BudgetTooSmallError before any event when it does not fit."""
        spec, provider = self._spec, self._provider
        prior = self._replay.take(StepKind.DRAFT, 1)
        if prior is None and self._budget.limits.limited:
            estimate = provider.estimate(StepKind.DRAFT, spec.topic, spec.documents)
            short = self._budget.shortfall(estimate)
            if short:
                raise BudgetTooSmallError(f"the budget does not cover the first draft: {short}")
        yield StepStarted(StepKind.DRAFT, 1)
        draft = functools.partial(provider.draft, spec.topic, spec.documents)
        async for delta in self._text_step(prior, draft, StepKind.DRAFT, 1):
            yield delta
        self._account(prior is None)
        yield StepFinished(self.steps[-1])

    async def _critique(self, text: str, iteration: int) -> AsyncIterator[ReflectionEvent]:
        """A CRITIQUE step of `text`; BudgetExhaustedError (before any event, or from a
        provider's extra call) when it does not fit."""
        spec, provider = self._spec, self._provider
        prior = self._replay.take(StepKind.CRITIQUE, iteration)
        if prior is not None and prior.critique is None:
            prior = None
        if prior is None and self._budget.limits.limited:
            estimate = provider.estimate(StepKind.CRITIQUE, spec.topic, spec.documents, text)
            self._budget.check(estimate, f"critique of iteration {iteration}")
        yield StepStarted(StepKind.CRITIQUE, iteration)
        if prior is not None:
            self.steps.append(prior)
        else:
            clock = time.perf_counter()
            with budget_in_force(self._budget):  # a provider's extra calls check it too
                critiqued = await provider.critique(spec.topic, spec.documents, text)
            latency = time.perf_counter() - clock
            self.steps.append(
                Step(StepKind.CRITIQUE, iteration, "", critiqued.critique, critiqued.usage, latency)
            )
            self.warnings.extend(critiqued.warnings)
        self._account(prior is None)
        critique = self.steps[-1].critique
        assert critique is not None  # a CRITIQUE step always has one
        self.iterations.append(Iteration(iteration, text, critique))
        yield StepFinished(self.steps[-1])

    async def _refine(
        self, text: str, critique: Critique, iteration: int
    ) -> AsyncIterator[ReflectionEvent]:
        """A REFINE step; BudgetExhaustedError before any event when it and the critique
        after it do not fit."""
        spec, provider = self._spec, self._provider
        prior = self._replay.take(StepKind.REFINE, iteration)
        if prior is None and self._budget.limits.limited:
            self._budget.check(
                _refine_estimate(provider, spec, text, critique),
                f"refine of iteration {iteration} (with its critique)",
            )
        yield StepStarted(StepKind.REFINE, iteration)
        refine = functools.partial(provider.refine, spec.topic, spec.documents, text, critique)
        async for delta in self._text_step(prior, refine, StepKind.REFINE, iteration):
            yield delta
        self._account(prior is None)
        yield StepFinished(self.steps[-1])


async def reflect(
    provider: ReflectionProvider, spec: ReflectionSpec, *, prices: PriceTable | None = None
) -> ReflectionOutcome:
    """Run the loop to completion and return its outcome (see `run_reflection`)."""
    outcome: ReflectionOutcome | None = None
    async for event in run_reflection(provider, spec, prices=prices):
        if isinstance(event, Completed):
            outcome = event.outcome
    if outcome is None:  # pragma: no cover - run_reflection always ends with Completed
        raise RuntimeError("the reflection loop ended without a Completed event")
    return outcome
