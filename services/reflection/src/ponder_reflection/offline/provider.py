"""OfflineProvider: the ReflectionProvider calls, each run on a shared corpus in a worker thread."""

from functools import partial

from ..provider import Critiqued, DeltaSink, Documents, Drafted
from ..types import Critique, StepKind, TokenUsage
from .corpus import Corpora
from .critique import assess
from .draft import write_draft
from .refine import fix
from .tuning import OUTPUT_MARGIN_WORDS


class OfflineProvider:
    """Extractive, deterministic provider that calls no model: it quotes and cites the
    supplied documents, critiques measurable gaps and fixes them from the same documents.
    Usage counts whitespace-separated words: prompt as Corpus.words_read, completion = the
    text or critique written."""

    name = "offline"
    model = "extractive-v1"
    offline = True

    def __init__(self) -> None:
        self._corpora = Corpora()

    def estimate(
        self,
        kind: StepKind,
        topic: str,
        documents: Documents,
        text: str = "",
        critique: Critique | None = None,
    ) -> TokenUsage:
        """The words the call reads (as its usage counts them), and a bound on those it
        writes (see OUTPUT_MARGIN_WORDS)."""
        given = critique if kind == StepKind.REFINE else None
        read = self._corpora.get(topic, tuple(documents)).words_read(text, given)
        return TokenUsage(read, 2 * read + OUTPUT_MARGIN_WORDS)

    async def draft(
        self, topic: str, documents: Documents, on_delta: DeltaSink | None = None
    ) -> Drafted:
        """Quote the most relevant, non-redundant source sentences, each cited (no stream)."""
        return await self._corpora.run(write_draft, topic, documents)

    async def critique(self, topic: str, documents: Documents, text: str) -> Critiqued:
        """Score `text` 0..10 by its measurable gaps, one issue and suggestion per gap."""
        return await self._corpora.run(partial(assess, text=text), topic, documents)

    async def refine(
        self,
        topic: str,
        documents: Documents,
        text: str,
        critique: Critique,
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """Fix the gaps `critique` names from the documents; never lowers the score."""
        return await self._corpora.run(partial(fix, text=text, critique=critique), topic, documents)
