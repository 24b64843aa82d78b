"""The interface every source implements, the query it gets, and the DISABLED signal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ponder_research.documents import FoundDocument, SourceKind


class SourceDisabledError(Exception):
    """The source is not configured; the message says why (reported as DISABLED)."""


@dataclass(frozen=True, slots=True)
class Query:
    """What one source is asked; hashable, so it keys the source cache."""

    text: str
    limit: int
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()


class Source(Protocol):
    """Something that finds documents for a query."""

    @property
    def kind(self) -> SourceKind:
        """Which source this is."""
        ...

    async def search(self, query: Query) -> list[FoundDocument]:
        """Up to `query.limit` documents, best first; raise SourceDisabledError when not
        configured, any other exception when it failed."""
        ...
