"""Immutable domain types of the reflection loop: sources, steps, critiques and outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class SourcePassage:
    """Where a source's text lies in its document (a library passage): heading or page, and
    character offsets of `text` in the document's extracted text."""

    index: int
    text: str
    heading: str = ""
    page: int = 0
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A source the text is grounded in; its 1-based position in a list is its `[n]` number.
    A library document comes as one source per passage, each with its `passage`."""

    id: str
    title: str
    text: str
    url: str = ""
    authors: tuple[str, ...] = ()
    passage: SourcePassage | None = None


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens used by one or more provider calls (the offline provider counts words)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class Critique:
    """An assessment of a text: a 0..10 score with matching issues and suggestions."""

    score: float
    issues: tuple[str, ...]
    suggestions: tuple[str, ...]


class StepKind(enum.Enum):
    """What one step of the loop did."""

    DRAFT = "draft"
    CRITIQUE = "critique"
    REFINE = "refine"


@dataclass(frozen=True, slots=True)
class Step:
    """One finished step: the text a DRAFT or REFINE step wrote ("" for CRITIQUE), and the
    critique a CRITIQUE step produced (None for DRAFT and REFINE)."""

    kind: StepKind
    iteration: int
    text: str
    critique: Critique | None
    usage: TokenUsage
    latency_s: float


@dataclass(frozen=True, slots=True)
class Iteration:
    """One pass of the loop: the text that was critiqued and its critique."""

    iteration: int
    draft: str
    critique: Critique


@dataclass(frozen=True, slots=True)
class Citation:
    """A `[index]` marker resolved to the supplied document (and passage) it points to."""

    index: int
    document_id: str
    title: str
    url: str
    passage: SourcePassage | None = None


class StopReason(enum.Enum):
    """Why the loop stopped."""

    SCORE_THRESHOLD_REACHED = "score_threshold_reached"
    MAX_ITERATIONS_REACHED = "max_iterations_reached"
    NO_ISSUES = "no_issues"


@dataclass(frozen=True, slots=True)
class ReflectionSpec:
    """What to write about, from which sources, and when to stop."""

    topic: str
    documents: tuple[SourceDocument, ...]
    max_iterations: int
    score_threshold: float
    completed: tuple[Step, ...] = ()  # steps an interrupted run already did (resumed)


@dataclass(frozen=True, slots=True)
class ReflectionOutcome:
    """The result of a finished loop."""

    text: str
    iterations: tuple[Iteration, ...]
    steps: tuple[Step, ...]
    citations: tuple[Citation, ...]
    usage: TokenUsage
    provider: str
    model: str
    offline: bool
    score: float
    stop_reason: StopReason
    warnings: tuple[str, ...]
    latency_s: float


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A step began; only its kind and iteration are known."""

    kind: StepKind
    iteration: int


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step finished."""

    step: Step


@dataclass(frozen=True, slots=True)
class Completed:
    """The loop finished; always the last event."""

    outcome: ReflectionOutcome


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of text a streaming provider wrote during a DRAFT or REFINE step."""

    kind: StepKind
    iteration: int
    text: str


ReflectionEvent: TypeAlias = StepStarted | StepFinished | TextDelta | Completed
