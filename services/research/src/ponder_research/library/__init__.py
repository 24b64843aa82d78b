"""The research service's library: documents read from bytes, cut into passages, indexed and
searched by passage. No gRPC here; the servicers (ResearchService, LibraryService) call this.

Reading a document::

    from ponder_research.library import extract, split_passages, UnreadableDocument

    doc = extract(data, "application/pdf", "report.pdf")   # ExtractedDocument
    # media types: text/markdown, text/plain, text/html (main text, no navigation),
    # application/pdf (text layer, one section per page); `media_type_for(name)` guesses one
    # from a file name ("" when unknown). Parameters such as "; charset=utf-8" are ignored.
    # A file that cannot be read raises UnreadableDocument(name, reason): str(exc) is
    # "<name>: <reason>", exc.reason the reason alone (e.g. "the PDF is encrypted").
    passages = split_passages(doc, "library:report")       # list[Passage]
    # Passage(document_id, index, text, start, end, heading, page):
    # doc.text[p.start:p.end] == p.text; heading is the section's heading path
    # ("Operations > Scheduling"), page the 1-based PDF page (0 for other formats).

The index (one per library; the folder sources and uploads share it)::

    index = LibraryIndex(embedder, VectorStore(path), min_similarity=0.3)
    index.add(document_id, name, media_type, passages, title=doc.title)  # -> IndexedDocument
    # keyword search finds it at once; it is "pending" until embedded:
    await index.embed_pending()          # embeds every pending document's passages in batches
                                         # (EmbeddingUnavailableError: retry later; documents
                                         # stay searchable by keywords meanwhile)
    index.is_embedded(document_id)       # True once its passages have vectors (INDEXED)
    index.remove(document_id)            # -> bool; its passages leave the index
    hits = await index.search("query", k)  # list[DocumentHit], best first
    # DocumentHit(document: IndexedDocument, score, passages: tuple[PassageHit, ...]);
    # PassageHit(passage, score); hit.found() is the FoundDocument research returns.
    index.version   # 16 hex digits, a content hash: changes exactly when a document is added,
                    # removed or changed (GetLibrary reports it; the gateway keys caches on it)
    index.changes   # a counter bumped by every add/remove/finished embedding
    len(index), document_id in index, index.get(document_id), index.documents

In the research service, `ResearchModule.library` (service.py) is the index in use: the folder
documents are added at start and embedded by a background task that returns once done; a
document added later (an upload) needs its own `await index.embed_pending()` (one runs at a time;
retry after EmbeddingUnavailableError). The research source cache keys library searches by
`index.version`, so an added or removed document shows at once.

The folder source (PONDER_RESEARCH_LIBRARY_DIRS and the shipped sample) goes through the same
index: `load_library(dirs)` returns LibraryFile records (`.add_to(index)`); a file that cannot be
read is logged and skipped. JSONL files hold one document per line (`read_jsonl`).
"""

from ponder_research.documents import Passage, PassageHit
from ponder_research.library.folder import LibraryError, LibraryFile, load_library, read_jsonl
from ponder_research.library.formats import (
    HTML,
    JSONL,
    MARKDOWN,
    MEDIA_TYPES,
    PDF,
    PLAIN_TEXT,
    ExtractedDocument,
    Section,
    UnreadableDocument,
    extract,
    media_type_for,
)
from ponder_research.library.index import DocumentHit, IndexedDocument, LibraryIndex
from ponder_research.library.passages import embedding_text, split_passages
from ponder_research.library.source import LibrarySource
from ponder_research.library.vectors import VectorStore


__all__ = [
    "HTML",
    "JSONL",
    "MARKDOWN",
    "MEDIA_TYPES",
    "PDF",
    "PLAIN_TEXT",
    "DocumentHit",
    "ExtractedDocument",
    "IndexedDocument",
    "LibraryError",
    "LibraryFile",
    "LibraryIndex",
    "LibrarySource",
    "Passage",
    "PassageHit",
    "Section",
    "UnreadableDocument",
    "VectorStore",
    "embedding_text",
    "extract",
    "load_library",
    "media_type_for",
    "read_jsonl",
    "split_passages",
]
