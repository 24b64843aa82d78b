"""The library's passage index: documents added and removed one by one, every passage searched
by keywords (BM25) at once and by meaning once embedded (through the Embedder, batched, vectors
kept in a VectorStore); results grouped per document with their best passages."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ponder_research.bm25 import BM25
from ponder_research.documents import FoundDocument, Passage, PassageHit, SourceKind
from ponder_research.embedder import Embedder, EmbeddingUnavailableError, Matrix
from ponder_research.library.passages import embedding_text
from ponder_research.library.vectors import VectorStore


logger = logging.getLogger(__name__)

# How much BM25 (scaled to 0..1 by the query's best passage) adds to a passage's cosine.
KEYWORD_WEIGHT = 0.2
# A document shows up to this many passages, each at least this share of its best score.
PASSAGES_PER_DOCUMENT = 3
PASSAGE_SHARE = 0.75
EMBED_BATCH = 64


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    """A document of the index: its identity, passages and metadata (`details`)."""

    id: str
    name: str
    media_type: str
    title: str
    passages: tuple[Passage, ...]
    details: FoundDocument
    digest: str  # content hash: id, name, title, authors, passages


@dataclass(frozen=True, slots=True)
class DocumentHit:
    """A document that matched a query: its score (its best passage's) and best passages."""

    document: IndexedDocument
    score: float
    passages: tuple[PassageHit, ...]

    def found(self) -> FoundDocument:
        """The hit as a research result: the document's metadata, score and passages; its
        summary is the record's own summary, else the best passage."""
        details = self.document.details
        summary = details.summary or (self.passages[0].passage.text if self.passages else "")
        return replace(details, summary=summary, score=self.score, passages=self.passages)


def _digest(
    document_id: str, name: str, title: str, details: FoundDocument, texts: Sequence[str]
) -> str:
    digest = hashlib.sha256()
    for part in (document_id, name, title, "\x1e".join(details.authors), details.summary, *texts):
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


class LibraryIndex:
    """Passages of documents, searched by meaning (cosine plus a little BM25) where embedded,
    by BM25 alone otherwise or when the embedder fails."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        *,
        min_similarity: float = 0.0,
    ) -> None:
        self.embedder = embedder
        self._store = store
        self.min_similarity = min_similarity
        self.keyword_weight = KEYWORD_WEIGHT  # benchmarks and tests set others
        self._documents: dict[str, IndexedDocument] = {}
        self._vectors: dict[str, Matrix] = {}  # document id -> one unit row per passage
        self._bm25 = BM25()
        self._matrix: tuple[Matrix, list[tuple[str, int]]] | None = None
        self._version: str | None = None
        self.changes = 0  # bumped by every add, remove and finished embedding
        self._embedding = asyncio.Lock()  # one embed_pending at a time

    # -- contents ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._documents)

    def __contains__(self, document_id: object) -> bool:
        return document_id in self._documents

    @property
    def documents(self) -> list[IndexedDocument]:
        """Every document, in the order they were added."""
        return list(self._documents.values())

    def get(self, document_id: str) -> IndexedDocument | None:
        """The document with this id, if any."""
        return self._documents.get(document_id)

    @property
    def passage_count(self) -> int:
        """Passages of every document."""
        return sum(len(d.passages) for d in self._documents.values())

    @property
    def version(self) -> str:
        """A content hash of the documents (16 hex digits), independent of their order: it
        changes exactly when a document is added, removed or changed."""
        if self._version is None:
            digest = hashlib.sha256()
            for item in sorted(d.digest for d in self._documents.values()):
                digest.update(item.encode())
            self._version = digest.hexdigest()[:16]
        return self._version

    def add(
        self,
        document_id: str,
        name: str,
        media_type: str,
        passages: Sequence[Passage],
        *,
        title: str = "",
        details: FoundDocument | None = None,
    ) -> IndexedDocument:
        """Add or replace a document (keyword search finds it at once; `embed_pending` makes
        it searchable by meaning). `details` carries metadata (authors, url, dates)."""
        title = title or (details.title if details else "") or name
        details = replace(
            details
            or FoundDocument(id=document_id, title=title, summary="", source=SourceKind.LIBRARY),
            id=document_id,
            title=title,
            source=SourceKind.LIBRARY,
            found_in=(SourceKind.LIBRARY,),
        )
        texts = [embedding_text(title, p) for p in passages]
        document = IndexedDocument(
            id=document_id,
            name=name,
            media_type=media_type,
            title=title,
            passages=tuple(replace(p, document_id=document_id) for p in passages),
            details=details,
            digest=_digest(document_id, name, title, details, texts),
        )
        old = self._documents.get(document_id)
        if old is not None and old.digest == document.digest:
            return old
        self.remove(document_id)
        self._documents[document_id] = document
        for passage, text in zip(document.passages, texts, strict=True):
            self._bm25.add(f"{document_id}\x1f{passage.index}", text)
        self._changed()
        return document

    def remove(self, document_id: str) -> bool:
        """Remove a document and its passages; False when there was none."""
        document = self._documents.pop(document_id, None)
        if document is None:
            return False
        for passage in document.passages:
            self._bm25.remove(f"{document_id}\x1f{passage.index}")
        self._vectors.pop(document_id, None)
        self._changed()
        return True

    def _changed(self) -> None:
        self._matrix = None
        self._version = None
        self.changes += 1

    # -- embedding --------------------------------------------------------------------------

    def is_embedded(self, document_id: str) -> bool:
        """Whether every passage of the document has its vector."""
        return document_id in self._vectors

    @property
    def embedded(self) -> bool:
        """Whether every document is searched by meaning."""
        return len(self._vectors) == len(self._documents)

    async def embed_pending(self, *, batch: int = EMBED_BATCH) -> int:
        """Embed the passages of every document that has no vectors yet (from the store when
        it has them, else through the embedder in batches); returns how many passages were
        embedded. Raises EmbeddingUnavailableError when the embedder fails (documents done
        before keep their vectors)."""
        if self.embedder is None:
            raise EmbeddingUnavailableError("no embedder configured")
        async with self._embedding:
            return await self._embed_pending(self.embedder, batch)

    async def _embed_pending(self, embedder: Embedder, batch: int) -> int:
        pending = [d for d in self._documents.values() if d.id not in self._vectors]
        if not pending:
            return 0
        if not embedder.model:
            await embedder.embed(["probe"])  # learns the model's name
        model = embedder.model
        jobs = [
            (
                document,
                [
                    VectorStore.digest(model, embedding_text(document.title, p))
                    for p in document.passages
                ],
            )
            for document in pending
        ]
        known: dict[str, Matrix] = {}
        if self._store is not None:
            wanted = [digest for _, digests in jobs for digest in digests]
            known = await asyncio.to_thread(self._store.load, wanted)
        missing = {
            digest: embedding_text(document.title, passage)
            for document, digests in jobs
            for passage, digest in zip(document.passages, digests, strict=True)
            if digest not in known
        }
        logger.info(
            "library indexing",
            extra={"documents": len(jobs), "stored": len(known), "to_embed": len(missing)},
        )
        todo = list(missing.items())
        embedded = 0
        try:
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                vectors = await embedder.embed([text for _, text in chunk])
                fresh = [(digest, vectors[row]) for row, (digest, _) in enumerate(chunk)]
                if self._store is not None:
                    await asyncio.to_thread(self._store.save, fresh)
                known.update(fresh)
                embedded += len(chunk)
                logger.info(
                    "library indexing progress", extra={"embedded": embedded, "of": len(todo)}
                )
        finally:
            self._install(jobs, known)
        return embedded

    def _install(
        self, jobs: Sequence[tuple[IndexedDocument, list[str]]], known: dict[str, Matrix]
    ) -> None:
        """Give every still-current document whose vectors are all known its matrix."""
        installed = 0
        for document, digests in jobs:
            if self._documents.get(document.id) is not document:
                continue  # removed or replaced meanwhile
            if not digests:
                self._vectors[document.id] = np.zeros((0, 0), dtype=np.float32)
            elif all(digest in known for digest in digests):
                self._vectors[document.id] = np.vstack([known[d] for d in digests]).astype(
                    np.float32
                )
            else:
                continue
            installed += 1
        if installed:
            self._matrix = None
            self.changes += 1
            logger.info("library passages embedded", extra={"documents": installed})

    def _rows(self) -> tuple[Matrix, list[tuple[str, int]]]:
        """Every embedded passage's vector, and which (document, passage) each row is."""
        if self._matrix is None:
            blocks: list[Matrix] = []
            owners: list[tuple[str, int]] = []
            for document_id, vectors in self._vectors.items():
                if vectors.size:
                    blocks.append(vectors)
                    owners.extend((document_id, index) for index in range(vectors.shape[0]))
            matrix = np.vstack(blocks) if blocks else np.zeros((0, 0), dtype=np.float32)
            self._matrix = (matrix, owners)
        return self._matrix

    # -- search -----------------------------------------------------------------------------

    async def search(self, query: str, k: int) -> list[DocumentHit]:
        """The `k` documents best matching `query`, each with its best passages: by meaning
        (one embedding call) when anything is embedded, by keywords otherwise or when the
        embedder fails."""
        if self.embedder is not None and self._vectors:
            try:
                vector = (await self.embedder.embed([query]))[0]
            except EmbeddingUnavailableError as exc:
                logger.warning("library falls back to keywords", extra={"reason": str(exc)})
            else:
                return self.vector_search(vector, query, k)
        return self.keyword_search(query, k)

    def keyword_search(self, query: str, k: int) -> list[DocumentHit]:
        """BM25 over passages (scores are BM25's)."""
        scores: dict[tuple[str, int], float] = {}
        for key, score in self._bm25.search(query):
            document_id, _, index = key.partition("\x1f")
            scores[(document_id, int(index))] = score
        return self._group(scores, k, set())

    def vector_search(self, vector: Matrix, query: str, k: int) -> list[DocumentHit]:
        """Cosine of each embedded passage to the unit `vector`, plus KEYWORD_WEIGHT times its
        BM25 score scaled by the best; documents not embedded yet count by keywords alone. A
        document whose best cosine is under `min_similarity` is left out."""
        scores: dict[tuple[str, int], float] = {}
        matrix, owners = self._rows()
        cosines = matrix @ vector if matrix.size else np.zeros(0, dtype=np.float32)
        for row, owner in enumerate(owners):
            scores[owner] = float(cosines[row])
        best_cosine: dict[str, float] = {}
        for (document_id, _), score in scores.items():
            best_cosine[document_id] = max(score, best_cosine.get(document_id, -1.0))
        too_far = {d for d, score in best_cosine.items() if score < self.min_similarity}
        keywords = self._bm25.search(query)
        if keywords and self.keyword_weight:
            top = keywords[0][1]
            for key, score in keywords:
                document_id, _, index = key.partition("\x1f")
                owner = (document_id, int(index))
                scores[owner] = scores.get(owner, 0.0) + self.keyword_weight * score / top
        return self._group(scores, k, too_far)

    def _group(
        self, scores: dict[tuple[str, int], float], k: int, excluded: set[str]
    ) -> list[DocumentHit]:
        per_document: dict[str, list[tuple[float, int]]] = {}
        for (document_id, index), score in scores.items():
            if document_id not in excluded and document_id in self._documents:
                per_document.setdefault(document_id, []).append((score, index))
        hits = []
        for document_id, scored in per_document.items():
            scored.sort(key=lambda pair: (-pair[0], pair[1]))
            best = scored[0][0]
            document = self._documents[document_id]
            chosen = [
                PassageHit(document.passages[index], score)
                for score, index in scored[:PASSAGES_PER_DOCUMENT]
                if best <= 0 or score >= best * PASSAGE_SHARE
            ]
            hits.append(DocumentHit(document, best, tuple(chosen)))
        hits.sort(key=lambda hit: (-hit.score, hit.document.id))
        return hits[:k]
