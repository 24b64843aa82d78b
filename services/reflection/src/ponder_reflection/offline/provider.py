"""OfflineProvider: the ReflectionProvider calls, each run on a shared corpus in a worker thread."""

import asyncio
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from typing import TypeVar

from ..provider import Critiqued, DeltaSink, Drafted
from ..text_analysis import word_count
from ..types import Critique, SourceDocument, StepKind, TokenUsage
from .corpus import Corpus
from .critique import assess
from .draft import write_draft
from .refine import fix
from .tuning import CORPORA_KEPT


T = TypeVar("T")
OUTPUT_MARGIN_WORDS = 64
Documents = Sequence[SourceDocument]


class OfflineProvider:
    """Extractive, deterministic provider that calls no model: it quotes and cites the
    supplied documents, critiques measurable gaps and fixes them from the same documents.
    Usage counts whitespace-separated words: prompt = topic, documents and input text;
    completion = the text or critique written."""

    name = "offline"
    model = "extractive-v1"
    offline = True

    def __init__(self) -> None:
        # The calls of one reflection share their topic and documents: one corpus serves all.
        self._corpus = lru_cache(maxsize=CORPORA_KEPT)(Corpus)

    def estimate(
        self,
        kind: StepKind,
        topic: str,
        documents: Documents,
        text: str = "",
        critique: Critique | None = None,
    ) -> TokenUsage:
        """The words the call reads (as its usage counts them), and a bound on those it
        writes: it quotes the topic, the documents and the text, so at most twice their
        words (markers and joining words included) plus a little."""
        read = self._corpus(topic, tuple(documents)).words + word_count(text)
        if kind == StepKind.REFINE and critique is not None:
            read += word_count(*critique.issues, *critique.suggestions)
        return TokenUsage(read, 2 * read + OUTPUT_MARGIN_WORDS)

    async def draft(
        self, topic: str, documents: Documents, on_delta: DeltaSink | None = None
    ) -> Drafted:
        """Quote the most relevant, non-redundant source sentences, each with its `[n]`
        (no token stream: the text is written at once, `on_delta` is not called)."""
        return await self._run(write_draft, topic, documents)

    async def critique(self, topic: str, documents: Documents, text: str) -> Critiqued:
        """Score `text` 0..10 by its measurable gaps, one issue and suggestion per gap."""
        return await self._run(partial(assess, text=text), topic, documents)

    async def refine(
        self,
        topic: str,
        documents: Documents,
        text: str,
        critique: Critique,
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """Fix the gaps `critique` names from the documents; never lowers the score."""
        return await self._run(partial(fix, text=text, critique=critique), topic, documents)

    async def _run(self, job: Callable[[Corpus], T], topic: str, documents: Documents) -> T:
        """`job` on the corpus of `topic` and `documents`, in a worker thread."""
        return await asyncio.to_thread(lambda: job(self._corpus(topic, tuple(documents))))
