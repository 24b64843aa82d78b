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
class Passage:
    """A span of a library document's extracted text: `text == document_text[start:end]`."""

    document_id: str
    index: int  # 0-based position among the document's passages
    text: str
    start: int  # character offsets into the document's extracted text
    end: int
    heading: str = ""  # heading path of its section ("Operations > Scheduling"), "" if none
    page: int = 0  # 1-based page of a paged format (PDF), 0 otherwise


@dataclass(frozen=True, slots=True)
class PassageHit:
    """A passage that matched a query, with its relevance (higher is better)."""

    passage: Passage
    score: float


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
    passages: tuple[PassageHit, ...] = ()  # library documents: best-matching passages first

    def with_score(self, score: float) -> FoundDocument:
        """A copy with another score."""
        return replace(self, score=score)
