"""A scripted reflection provider (texts and critiques in order, calls recorded) and the
topic and critique the loop tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from ponder_reflection.provider import Critiqued, DeltaSink, Drafted
from ponder_reflection.types import Critique, SourceDocument, StepKind, TokenUsage


def _stream(text: str, on_delta: DeltaSink | None) -> None:
    """Hand `text` to `on_delta` a word at a time, as a streaming model would."""
    if on_delta is not None:
        for word in text.split(" "):
            on_delta(word + " ")


RAG_TOPIC = "How retrieval-augmented generation reduces hallucinations in language models"


@dataclass
class ScriptedProvider:
    """A provider that returns scripted texts and critiques and records its calls."""

    texts: list[str]
    critiques: list[Critique]
    warnings: tuple[str, ...] = ()
    delay_s: float = 0.0
    name: str = "scripted"
    model: str = "script-1"
    offline: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    refined_with: list[Critique] = field(default_factory=list)

    def estimate(
        self,
        kind: StepKind,
        topic: str,
        documents: Sequence[SourceDocument],
        text: str = "",
        critique: Critique | None = None,
    ) -> TokenUsage:
        """Exactly what the scripted call will use."""
        return {
            StepKind.DRAFT: TokenUsage(10, 5),
            StepKind.CRITIQUE: TokenUsage(20, 3),
            StepKind.REFINE: TokenUsage(30, 7),
        }[kind]

    async def draft(
        self,
        topic: str,
        documents: Sequence[SourceDocument],
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """Return the first scripted text (streamed word by word when asked)."""
        await asyncio.sleep(self.delay_s)
        self.calls.append(("draft", topic))
        _stream(self.texts[0], on_delta)
        return Drafted(self.texts[0], TokenUsage(10, 5), self.warnings)

    async def critique(
        self, topic: str, documents: Sequence[SourceDocument], text: str
    ) -> Critiqued:
        """Return the next scripted critique."""
        await asyncio.sleep(self.delay_s)
        self.calls.append(("critique", text))
        critique = self.critiques[sum(1 for kind, _ in self.calls if kind == "critique") - 1]
        return Critiqued(critique, TokenUsage(20, 3), self.warnings)

    async def refine(
        self,
        topic: str,
        documents: Sequence[SourceDocument],
        text: str,
        critique: Critique,
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """Return the next scripted text."""
        await asyncio.sleep(self.delay_s)
        self.calls.append(("refine", text))
        self.refined_with.append(critique)
        return Drafted(
            self.texts[sum(1 for kind, _ in self.calls if kind == "refine")], TokenUsage(30, 7)
        )


def needs_work(score: float) -> Critique:
    """A critique with one issue."""
    return Critique(score, ("Sentence 1 has no citation",), ("Cite its source [1]",))
