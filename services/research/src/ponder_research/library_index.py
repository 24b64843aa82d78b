"""Search over the local library: by meaning once its documents are embedded (through the
embedding service, incrementally, vectors kept on disk), by keywords (BM25) until then or when
the embedding service is down."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ponder_research.bm25 import BM25Index
from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.embedder import Embedder, EmbeddingUnavailableError, Matrix
from ponder_research.sources import Query


logger = logging.getLogger(__name__)


# The model reads 256 word pieces at most; the embedding service refuses texts over 8192
# characters, so a long user document is cut well before that.
MAX_EMBEDDED_CHARACTERS = 4000


def document_text(doc: FoundDocument) -> str:
    """What is embedded for a document: its title and the start of its summary."""
    return f"{doc.title}. {doc.summary}"[:MAX_EMBEDDED_CHARACTERS]


class VectorStore:
    """Embeddings of texts by (model, text digest) in a SQLite file, so a restart only embeds
    new or changed documents."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path)
        db.execute("CREATE TABLE IF NOT EXISTS vectors (digest TEXT PRIMARY KEY, vector BLOB)")
        return db

    @staticmethod
    def digest(model: str, text: str) -> str:
        """The key of `text` embedded by `model`."""
        return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()

    def load(self, digests: Sequence[str]) -> dict[str, Matrix]:
        """The stored vectors among `digests`."""
        with self._connect() as db:
            found: dict[str, Matrix] = {}
            for start in range(0, len(digests), 500):
                chunk = list(digests[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for digest, blob in db.execute(
                    f"SELECT digest, vector FROM vectors WHERE digest IN ({marks})", chunk
                ):
                    found[digest] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
            return found

    def save(self, items: Sequence[tuple[str, Matrix]]) -> None:
        """Store vectors (committed on return)."""
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                [(digest, vector.astype("<f4").tobytes()) for digest, vector in items],
            )


def library_version(documents: Sequence[FoundDocument]) -> str:
    """A content hash of the documents (16 hex digits), independent of their order."""
    digest = hashlib.sha256()
    for line in sorted(
        "\x1f".join((d.id, d.title, "\x1e".join(d.authors), d.summary)) for d in documents
    ):
        digest.update(line.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


class LibraryIndex:
    """The library's documents with a BM25 index and, once built, a matrix of unit vectors."""

    def __init__(self, documents: Sequence[FoundDocument]) -> None:
        self.documents = list(documents)
        self._bm25 = BM25Index(
            [f"{d.title} {d.title} {' '.join(d.authors)} {d.summary}" for d in self.documents]
        )
        self._vectors: Matrix | None = None
        self.version = library_version(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def embedded(self) -> bool:
        """Whether searches go by meaning."""
        return self._vectors is not None

    async def build(self, client: Embedder, store: VectorStore, *, chunk: int = 256) -> None:
        """Embed every document not in `store` yet (logging progress), then switch to vector
        search. Raises EmbeddingUnavailableError when the embedding service fails."""
        texts = [document_text(doc) for doc in self.documents]
        probe = await client.embed(texts[:1] or ["probe"])  # learns the model's name
        model = client.model
        digests = [VectorStore.digest(model, text) for text in texts]
        known = await asyncio.to_thread(store.load, digests)
        missing = [i for i, digest in enumerate(digests) if digest not in known]
        logger.info(
            "library indexing",
            extra={"documents": len(texts), "stored": len(known), "to_embed": len(missing)},
        )
        for start in range(0, len(missing), chunk):
            batch = missing[start : start + chunk]
            vectors = await client.embed([texts[i] for i in batch])
            fresh = [(digests[i], vectors[row]) for row, i in enumerate(batch)]
            await asyncio.to_thread(store.save, fresh)
            known.update(fresh)
            logger.info(
                "library indexing progress",
                extra={"embedded": min(start + chunk, len(missing)), "of": len(missing)},
            )
        dimensions = probe.shape[1] if probe.size else 0
        matrix = np.zeros((len(texts), dimensions), dtype=np.float32)
        for row, digest in enumerate(digests):
            matrix[row] = known[digest]
        self._vectors = matrix
        logger.info("library indexed", extra={"documents": len(texts), "model": model})

    def keyword_search(self, text: str, limit: int) -> list[FoundDocument]:
        """BM25 matches, best first (score = BM25)."""
        return [self.documents[i].with_score(s) for i, s in self._bm25.search(text, limit)]

    def vector_search(
        self, query: Matrix, limit: int, *, min_similarity: float = 0.0
    ) -> list[FoundDocument]:
        """The documents most similar to the unit vector `query` (score = cosine), at least
        `min_similarity` similar (a library on other topics returns nothing, not noise)."""
        assert self._vectors is not None
        scores = self._vectors @ query
        order = np.argsort(-scores, kind="stable")[:limit]
        return [
            self.documents[int(i)].with_score(float(scores[int(i)]))
            for i in order
            if scores[int(i)] >= min_similarity
        ]


class LibrarySource:
    """The local library as a source: by meaning when indexed, by keywords otherwise."""

    kind = SourceKind.LIBRARY

    def __init__(
        self, index: LibraryIndex, client: Embedder | None, *, min_similarity: float = 0.0
    ) -> None:
        self.index = index
        self._client = client
        self._min_similarity = min_similarity

    async def search(self, query: Query) -> list[FoundDocument]:
        """Vector search (one embedding call) or BM25 when that is not possible."""
        if self.index.embedded and self._client is not None:
            try:
                vector = (await self._client.embed([query.text]))[0]
            except EmbeddingUnavailableError as exc:
                logger.warning("library falls back to keywords", extra={"reason": str(exc)})
            else:
                return self.index.vector_search(
                    vector, query.limit, min_similarity=self._min_similarity
                )
        return self.index.keyword_search(query.text, query.limit)
