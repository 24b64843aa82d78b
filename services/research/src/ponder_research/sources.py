"""The interface every source implements, the query it gets, and the DISABLED signal."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    tenant: str = ""  # library only: whose uploaded libraries are searched too
    library_version: str = ""  # library only: what it searches now (keys the source cache)

    def for_source(self, library: bool) -> Query:
        """The query as a source's cache key: the tenant and library version only matter to
        the library (arXiv and web answers are shared by every tenant)."""
        return self if library else replace(self, tenant="", library_version="")


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
