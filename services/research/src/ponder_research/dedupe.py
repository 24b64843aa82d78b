"""Merging the same document found through several sources.

Two results are the same document when they share an arXiv id, a DOI, a normalised URL or a
normalised title, or when their titles are near-identical by embedding similarity. A merged
document keeps the richest metadata (arXiv's first, then the library's, then the web's), the
best score, and every source it came from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.embedder import Embedder, EmbeddingUnavailableError
from ponder_research.urls import normalize_url


logger = logging.getLogger(__name__)

TITLE_SIMILARITY = 0.95
_FILLED = (
    "authors",
    "url",
    "summary",
    "published",
    "updated",
    "categories",
    "pdf_url",
    "doi",
    "passages",
)
_PREFERENCE = {SourceKind.ARXIV: 0, SourceKind.LIBRARY: 1, SourceKind.WEB: 2}


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, first: int, second: int) -> None:
        a, b = self.find(first), self.find(second)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def normalize_title(title: str) -> str:
    """Casefolded words without punctuation: "Attention is all you need!" == "Attention Is
    All You Need"."""
    return " ".join(re.sub(r"[^\w\s]", " ", title.casefold()).split())


def identity_keys(doc: FoundDocument) -> list[str]:
    """The identifiers that make two results the same document."""
    keys = [f"title:{normalize_title(doc.title)}"]
    if doc.arxiv_id:
        keys.append(f"arxiv:{doc.arxiv_id}")
    if doc.doi:
        keys.append(f"doi:{doc.doi.casefold()}")
    if doc.url:
        keys.append(f"url:{normalize_url(doc.url)}")
    return keys


def merge(group: Sequence[FoundDocument]) -> FoundDocument:
    """One document from several results of the same document."""
    ordered = sorted(group, key=lambda d: _PREFERENCE[d.source])
    best = ordered[0]
    arxiv_id = next((d.arxiv_id for d in ordered if d.arxiv_id), "")
    found_in = tuple(dict.fromkeys(kind for d in group for kind in (d.found_in or (d.source,))))

    # Each field from the most preferred result that has it.
    filled: dict[str, Any] = {
        name: next((getattr(d, name) for d in ordered if getattr(d, name)), getattr(best, name))
        for name in _FILLED
    }
    return replace(
        best,
        **filled,
        id=f"arxiv:{arxiv_id}" if arxiv_id else best.id,
        arxiv_id=arxiv_id,
        score=max(d.score for d in group),
        source_rank=min(d.source_rank for d in group),
        found_in=found_in,
    )


async def dedupe(
    documents: Sequence[FoundDocument], client: Embedder | None
) -> tuple[list[FoundDocument], int]:
    """Merged documents in first-seen order, and how many results were merged away."""
    links = _UnionFind(len(documents))
    owner: dict[str, int] = {}
    for index, doc in enumerate(documents):
        for key in identity_keys(doc):
            if key in owner:
                links.union(owner[key], index)
            else:
                owner[key] = index
    if client is not None and len(documents) > 1:
        await _link_similar_titles(documents, links, client)
    groups: dict[int, list[FoundDocument]] = {}
    for index, doc in enumerate(documents):
        groups.setdefault(links.find(index), []).append(doc)
    merged = [merge(group) for _, group in sorted(groups.items())]
    return merged, len(documents) - len(merged)


async def _link_similar_titles(
    documents: Sequence[FoundDocument], links: _UnionFind, client: Embedder
) -> None:
    """Union results whose titles are near-identical in meaning (cosine ≥ 0.95)."""
    try:
        vectors = await client.embed([doc.title for doc in documents])
    except EmbeddingUnavailableError as exc:
        logger.info("title dedupe skipped", extra={"reason": str(exc)})
        return
    similarity = vectors @ vectors.T
    for first in range(len(documents)):
        for second in range(first + 1, len(documents)):
            if similarity[first, second] >= TITLE_SIMILARITY:
                links.union(first, second)
