"""LibraryIndex and LibrarySource: incremental embedding through the real embedding service
into a SQLite VectorStore, vector search, min_similarity, and the BM25 fallback."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.embedder import EmbeddingUnavailableError
from ponder_research.embedding_client import EmbeddingClient
from ponder_research.library import load_library
from ponder_research.library_index import LibraryIndex, LibrarySource, VectorStore, document_text
from ponder_research.sources import Query


DPR = "arxiv:2004.04906"
# Says what DPR does without its title's words "dense", "passage" or "open-domain".
PARAPHRASE = (
    "a two-tower neural encoder that fetches supporting text snippets for answering "
    "trivia-style questions, beating TF-IDF style lexical matching"
)
INDEX_LOGGER = "ponder_research.library_index"


@pytest.fixture(scope="module")
def sample() -> list[FoundDocument]:
    """The shipped sample library."""
    return load_library([])


@pytest.fixture(scope="module")
async def built(
    sample: list[FoundDocument], tmp_path_factory: pytest.TempPathFactory, stack: Any
) -> LibraryIndex:
    """The sample library embedded through the stack's embedding service (once)."""
    import grpc

    store = VectorStore(tmp_path_factory.mktemp("vectors") / "vectors.sqlite3")
    async with grpc.aio.insecure_channel(stack.address("embedding")) as channel:
        index = LibraryIndex(sample)
        await index.build(EmbeddingClient(channel, timeout=10), store)
    return index


def _records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == INDEX_LOGGER and r.getMessage() == message]


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    return count


class TestBuild:
    async def test_build_embeds_and_stores_every_document(
        self,
        sample: list[FoundDocument],
        tmp_path: Path,
        embedding_client: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """build() embeds every document, stores one vector each, and switches to vector
        search; a second build with a new index over the same store embeds nothing new."""
        path = tmp_path / "vectors.sqlite3"
        store = VectorStore(path)
        index = LibraryIndex(sample)
        assert not index.embedded
        with caplog.at_level(logging.INFO, logger=INDEX_LOGGER):
            await index.build(embedding_client, store, chunk=20)
        assert index.embedded
        assert _rows(path) == len(sample) == 51
        (start,) = _records(caplog, "library indexing")
        assert (start.documents, start.stored, start.to_embed) == (51, 0, 51)
        progress = [r.embedded for r in _records(caplog, "library indexing progress")]
        assert progress == [20, 40, 51]
        embedded_texts = [text for call in embedding_client.calls for text in call]
        assert sorted(set(embedded_texts)) == sorted(document_text(d) for d in sample)

        caplog.clear()
        embedding_client.calls.clear()
        again = LibraryIndex(sample)
        with caplog.at_level(logging.INFO, logger=INDEX_LOGGER):
            await again.build(embedding_client, VectorStore(path))
        (start,) = _records(caplog, "library indexing")
        assert (start.stored, start.to_embed) == (51, 0)
        assert _records(caplog, "library indexing progress") == []
        # Only the one-text probe that learns the model's name reaches the service.
        assert [len(call) for call in embedding_client.calls] == [1]
        assert again.embedded
        query = (await embedding_client.embed([PARAPHRASE]))[0]
        assert [d.id for d in again.vector_search(query, 5)] == [
            d.id for d in index.vector_search(query, 5)
        ]

    async def test_new_documents_only_are_embedded(
        self, sample: list[FoundDocument], tmp_path: Path, embedding_client: Any
    ) -> None:
        """After a library grows, only the added or changed documents are embedded."""
        store = VectorStore(tmp_path / "vectors.sqlite3")
        await LibraryIndex(sample[:10]).build(embedding_client, store)
        embedding_client.calls.clear()
        await LibraryIndex(sample[:12]).build(embedding_client, store)
        probe, *batches = embedding_client.calls
        assert len(probe) == 1
        assert [t for batch in batches for t in batch] == [document_text(d) for d in sample[10:12]]

    async def test_build_fails_when_embedding_is_down(
        self, sample: list[FoundDocument], tmp_path: Path, unreachable_embedding: Any
    ) -> None:
        """build() raises EmbeddingUnavailableError and the index stays keyword-only."""
        index = LibraryIndex(sample)
        with pytest.raises(EmbeddingUnavailableError, match="UNAVAILABLE"):
            await index.build(unreachable_embedding, VectorStore(tmp_path / "v.sqlite3"))
        assert not index.embedded

    async def test_long_document_does_not_block_indexing(
        self, tmp_path: Path, embedding_client: Any
    ) -> None:
        """A library with a very long document (a 10,000-character note) still gets indexed."""
        docs = [
            FoundDocument(
                id="library:short", title="Short", summary="text", source=SourceKind.LIBRARY
            ),
            FoundDocument(
                id="library:long", title="Long", summary="word " * 2000, source=SourceKind.LIBRARY
            ),
        ]
        index = LibraryIndex(docs)
        await index.build(embedding_client, VectorStore(tmp_path / "v.sqlite3"))
        assert index.embedded


class TestVectorSearch:
    async def test_paraphrase_finds_dpr_first(
        self, built: LibraryIndex, embedding_client: EmbeddingClient
    ) -> None:
        """A paraphrase of DPR (few shared words) finds it first; scores are cosines, best
        first."""
        query = (await embedding_client.embed([PARAPHRASE]))[0]
        found = built.vector_search(query, 5)
        assert found[0].id == DPR
        assert len(found) == 5
        scores = [d.score for d in found]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 <= s <= 1.0 for s in scores)
        text = document_text(found[0])
        expected = float((await embedding_client.embed([text]))[0] @ query)
        assert found[0].score == pytest.approx(expected, abs=1e-4)

    async def test_min_similarity_filters(
        self, built: LibraryIndex, embedding_client: EmbeddingClient
    ) -> None:
        """Only documents at least min_similarity similar are returned (none above 0.99)."""
        query = (await embedding_client.embed([PARAPHRASE]))[0]
        everything = built.vector_search(query, 100)
        assert len(everything) == 51
        cut = everything[5].score
        above = built.vector_search(query, 100, min_similarity=cut)
        assert [d.id for d in above] == [d.id for d in everything if d.score >= cut]
        assert 5 <= len(above) < 51
        assert built.vector_search(query, 100, min_similarity=0.99) == []

    async def test_unrelated_query_finds_nothing_at_the_service_default(
        self, built: LibraryIndex, embedding_client: EmbeddingClient
    ) -> None:
        """An off-topic query finds nothing at min_similarity 0.25 (the service default)."""
        query = (await embedding_client.embed(["zebrafish fin regeneration in aquaria"]))[0]
        assert built.vector_search(query, 10, min_similarity=0.25) == []

    def test_keyword_search(self, sample: list[FoundDocument]) -> None:
        """Before build(), keyword_search() ranks by BM25 (titles and authors indexed)."""
        index = LibraryIndex(sample)
        found = index.keyword_search("chain-of-thought prompting elicits reasoning", 5)
        assert found[0].id == "arxiv:2201.11903"
        assert [d.id for d in index.keyword_search("Vaswani", 3)] == ["arxiv:1706.03762"]
        assert index.keyword_search("zebrafish", 10) == []
        assert len(index) == 51


class TestLibrarySource:
    async def test_vector_search_when_indexed(
        self, built: LibraryIndex, embedding_client: Any
    ) -> None:
        """Indexed and reachable: one embedding call, results by meaning."""
        embedding_client.calls.clear()
        source = LibrarySource(built, embedding_client, min_similarity=0.25)
        found = await source.search(Query(PARAPHRASE, 3))
        assert embedding_client.calls == [[PARAPHRASE]]
        assert found[0].id == DPR
        assert source.kind is SourceKind.LIBRARY

    async def test_falls_back_to_bm25_when_embedding_fails(
        self,
        built: LibraryIndex,
        unreachable_embedding: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Indexed but the embedding call fails: BM25 results and a warning, no error."""
        source = LibrarySource(built, unreachable_embedding)
        with caplog.at_level(logging.WARNING, logger=INDEX_LOGGER):
            found = await source.search(Query("dense passage retrieval", 3))
        assert len(unreachable_embedding.calls) == 1
        assert [d.id for d in found] == [
            d.id for d in built.keyword_search("dense passage retrieval", 3)
        ]
        assert found[0].id == DPR
        assert found[0].score > 1.0  # a BM25 score, not a cosine
        assert _records(caplog, "library falls back to keywords")

    async def test_keywords_until_indexed(
        self, sample: list[FoundDocument], embedding_client: Any
    ) -> None:
        """Not indexed yet: BM25 without any embedding call; no client at all: BM25 too."""
        embedding_client.calls.clear()
        index = LibraryIndex(sample)
        found = await LibrarySource(index, embedding_client).search(Query("Vaswani", 3))
        assert [d.id for d in found] == ["arxiv:1706.03762"]
        assert embedding_client.calls == []
        assert await LibrarySource(index, None).search(Query("zebrafish", 3)) == []


class TestVectorStore:
    def test_round_trip(self, tmp_path: Path) -> None:
        """Saved vectors load back as float32, by digest; unknown digests are absent."""
        store = VectorStore(tmp_path / "deep" / "v.sqlite3")
        key = VectorStore.digest("model-a", "text")
        vector = np.array([0.6, 0.8, 0.0], dtype=np.float32)
        store.save([(key, vector)])
        loaded = store.load([key, VectorStore.digest("model-a", "other")])
        assert list(loaded) == [key]
        assert loaded[key].dtype == np.float32
        assert np.array_equal(loaded[key], vector)

    def test_digest_depends_on_model_and_text(self) -> None:
        """Another model or another text is another key."""
        digests = {
            VectorStore.digest("m1", "t"),
            VectorStore.digest("m2", "t"),
            VectorStore.digest("m1", "u"),
        }
        assert len(digests) == 3
