"""Sources behind one small async interface, and the local-library source."""

from __future__ import annotations

from typing import Protocol

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.library import Library


class SourceDisabledError(Exception):
    """The source is not configured; the message says why (reported as DISABLED)."""


class Source(Protocol):
    """Something that finds documents for a query."""

    kind: SourceKind

    async def search(self, query: str, limit: int) -> list[FoundDocument]:
        """Up to `limit` documents for `query`, best first; raise SourceDisabledError when not
        configured, any other exception when it failed."""
        ...


class LibrarySource:
    """The local library, searched by keywords (embedding search arrives with issue 4)."""

    kind = SourceKind.LIBRARY

    def __init__(self, library: Library) -> None:
        self._library = library

    async def search(self, query: str, limit: int) -> list[FoundDocument]:
        """BM25 matches from the in-memory index (microseconds: no need to leave the loop)."""
        return self._library.search(query, limit)


class UnconfiguredSource:
    """A source this build cannot reach yet; always reports DISABLED with the reason."""

    def __init__(self, kind: SourceKind, reason: str) -> None:
        self.kind = kind
        self._reason = reason

    async def search(self, query: str, limit: int) -> list[FoundDocument]:
        """Raise SourceDisabledError with the reason."""
        raise SourceDisabledError(self._reason)
