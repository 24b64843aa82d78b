"""Reranking merged documents against the query with the embedding service's similarity RPC,
or, when it cannot answer, by each source's own order."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.embedder import Embedder, EmbeddingUnavailableError


# The model reads 256 word pieces at most; the embedding service refuses texts over 8192
# characters, so a long text is cut well before that.
MAX_EMBEDDED_CHARACTERS = 4000


def document_text(doc: FoundDocument) -> str:
    """What reranking compares with the query: the title and the start of the summary (for a
    library document, its best passage)."""
    return f"{doc.title}. {doc.summary}"[:MAX_EMBEDDED_CHARACTERS]


class Ranking(enum.Enum):
    """How a result list was ordered (mirrors ponder.research.v1.RankingMethod)."""

    EMBEDDING_SIMILARITY = "embedding_similarity"
    SOURCE_ORDER = "source_order"


@dataclass(frozen=True, slots=True)
class Ranked:
    """Documents best first, how they were ordered, and why it fell back (if it did)."""

    documents: list[FoundDocument]
    method: Ranking
    note: str = ""


def source_order(
    documents: Sequence[FoundDocument], kinds: Sequence[SourceKind]
) -> list[FoundDocument]:
    """Interleave the sources: every source's first result, then every second, ...; score is
    1 / (1 + rank within its source)."""
    order = {kind: i for i, kind in enumerate(kinds)}

    def rank(doc: FoundDocument) -> tuple[int, int]:
        return doc.source_rank, order.get(doc.source, len(order))

    return [doc.with_score(1.0 / (1 + doc.source_rank)) for doc in sorted(documents, key=rank)]


async def rerank(
    query: str,
    documents: Sequence[FoundDocument],
    client: Embedder | None,
    *,
    kinds: Sequence[SourceKind],
) -> Ranked:
    """By cosine similarity to the query (stable for ties), or source order with a note."""
    if not documents:
        return Ranked([], Ranking.EMBEDDING_SIMILARITY if client else Ranking.SOURCE_ORDER)
    note = "no embedding service configured"
    if client is not None:
        try:
            candidates = [(str(i), document_text(d)) for i, d in enumerate(documents)]
            scored = await client.rank(query, candidates)
        except EmbeddingUnavailableError as exc:
            note = f"embedding service unavailable ({exc}): source order kept"
        else:
            ranked = [documents[index].with_score(score) for index, score in scored]
            return Ranked(ranked, Ranking.EMBEDDING_SIMILARITY)
    return Ranked(source_order(documents, kinds), Ranking.SOURCE_ORDER, note)
