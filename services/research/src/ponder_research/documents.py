"""The research domain's document type, independent of gRPC."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field, replace


class SourceKind(enum.Enum):
    """Where a document was found (mirrors ponder.type.v1.SourceKind)."""

    ARXIV = "arxiv"
    WEB = "web"
    LIBRARY = "library"


@dataclass(frozen=True, slots=True)
class FoundDocument:
    """A document a source returned, with its relevance score for the query."""

    id: str
    title: str
    summary: str
    source: SourceKind
    authors: tuple[str, ...] = ()
    url: str = ""
    published: dt.date | None = None
    categories: tuple[str, ...] = ()
    pdf_url: str = ""
    score: float = 0.0
    found_in: tuple[SourceKind, ...] = field(default=())
    updated: dt.date | None = None
    doi: str = ""
    arxiv_id: str = ""  # bare arXiv id without version, when the document is an arXiv paper
    source_rank: int = 0  # position in its source's result list, 0 = first

    def with_score(self, score: float) -> FoundDocument:
        """A copy with another score."""
        return replace(self, score=score)
