"""The library as a research source: the passage index searched for a query."""

from __future__ import annotations

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.library.index import LibraryIndex
from ponder_research.sources import Query


class LibrarySource:
    """The local library as a source: documents with their best passages, best first."""

    kind = SourceKind.LIBRARY

    def __init__(self, index: LibraryIndex) -> None:
        self.index = index

    async def search(self, query: Query) -> list[FoundDocument]:
        """By meaning where embedded (BM25 alongside), by keywords otherwise."""
        return [hit.found() for hit in await self.index.search(query.text, query.limit)]
