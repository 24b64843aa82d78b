"""LibraryIndex through the real embedding service: passages embedded in batches into a
SQLite VectorStore, deep passages found and grouped per document, add/remove and the version,
min_similarity, and the BM25 fallback."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ponder_research.embedder import EmbeddingUnavailableError
from ponder_research.library import (
    MARKDOWN,
    LibraryFile,
    LibraryIndex,
    LibrarySource,
    VectorStore,
    extract,
    load_library,
    split_passages,
)
from ponder_research.sources import Query


HANDBOOK = Path(__file__).parents[2] / "data" / "library" / "acme_handbook.md"
DPR = "arxiv:2004.04906"
# Says what DPR does without its title's words "dense", "passage" or "open-domain".
PARAPHRASE = (
    "a two-tower neural encoder that fetches supporting text snippets for answering "
    "trivia-style questions, beating TF-IDF style lexical matching"
)
INDEX_LOGGER = "ponder_research.library.index"


@pytest.fixture(scope="module")
def sample() -> list[LibraryFile]:
    """The shipped sample library."""
    return load_library([])


def _handbook(index: LibraryIndex) -> None:
    document = extract(HANDBOOK.read_bytes(), MARKDOWN, HANDBOOK.name)
    index.add(
        "library:acme_handbook",
        HANDBOOK.name,
        MARKDOWN,
        split_passages(document, "library:acme_handbook"),
        title=document.title,
    )


def _fill(index: LibraryIndex, files: list[LibraryFile]) -> LibraryIndex:
    for file in files:
        file.add_to(index)
    return index


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    return count


class TestEmbedding:
    async def test_passages_embedded_in_batches_and_stored(
        self,
        sample: list[LibraryFile],
        tmp_path: Path,
        embedding_client: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """embed_pending() embeds every passage in batches and stores one vector each; a new
        index over the same store embeds nothing (the client knows the model's name)."""
        path = tmp_path / "vectors.sqlite3"
        index = _fill(LibraryIndex(embedding_client, VectorStore(path)), sample)
        _handbook(index)
        assert not index.embedded
        assert not index.is_embedded("library:acme_handbook")
        embedded = await index.embed_pending(batch=32)
        assert index.embedded
        assert index.is_embedded("library:acme_handbook")
        assert embedded == index.passage_count == _rows(path)
        sizes = [len(call) for call in embedding_client.calls]
        assert sizes[0] == 1  # the probe
        assert max(sizes[1:]) == 32
        assert sum(sizes[1:]) == embedded

        embedding_client.calls.clear()
        again = _fill(LibraryIndex(embedding_client, VectorStore(path)), sample)
        _handbook(again)
        assert await again.embed_pending() == 0
        assert embedding_client.calls == []
        assert again.version == index.version

    async def test_embedding_down_keeps_keyword_search(
        self, sample: list[LibraryFile], tmp_path: Path, unreachable_embedding: Any
    ) -> None:
        """embed_pending() raises EmbeddingUnavailableError; searches use BM25 meanwhile."""
        index = _fill(LibraryIndex(unreachable_embedding, VectorStore(tmp_path / "v.db")), sample)
        with pytest.raises(EmbeddingUnavailableError, match="UNAVAILABLE"):
            await index.embed_pending()
        assert not index.embedded
        (hit, *_) = await index.search("dense passage retrieval", 3)
        assert hit.document.id == DPR
        assert hit.score > 1.0  # a BM25 score


@pytest.fixture(scope="module")
async def built(
    sample: list[LibraryFile], tmp_path_factory: pytest.TempPathFactory, stack: Any
) -> LibraryIndex:
    """The sample library and the handbook embedded through the stack's embedding service."""
    import grpc

    from ponder_research.embedding_client import EmbeddingClient

    channel = grpc.aio.insecure_channel(stack.address("embedding"))
    store = VectorStore(tmp_path_factory.mktemp("vectors") / "vectors.sqlite3")
    index = _fill(LibraryIndex(EmbeddingClient(channel, timeout=10), store), sample)
    _handbook(index)
    await index.embed_pending()
    return index


class TestSearch:
    async def test_deep_section_is_found_with_its_passage(self, built: LibraryIndex) -> None:
        """A question answered only deep inside the handbook finds the handbook first, with
        the scheduling passage (heading and offsets) as its best passage."""
        (hit, *_) = await built.search(
            "How does Acme schedule nightly batch jobs with quantum annealing?", 5
        )
        assert hit.document.id == "library:acme_handbook"
        best = hit.passages[0].passage
        assert "quantum annealing" in best.text
        assert best.heading == "Acme Operations Handbook > Scheduling"
        assert HANDBOOK.read_text()[best.start : best.end] == best.text
        assert best.start > 2000  # far past what a whole-document embedding reads
        assert 1 <= len(hit.passages) <= 3
        scores = [p.score for p in hit.passages]
        assert scores == sorted(scores, reverse=True)
        found = hit.found()
        assert found.summary == best.text
        assert found.passages == hit.passages

    async def test_paraphrase_finds_dpr_by_meaning(self, built: LibraryIndex) -> None:
        """By meaning alone (no BM25), a paraphrase of DPR with few shared words finds it
        first; with BM25 alongside (the default) it stays in the first three; best first."""
        default = built.keyword_weight
        built.keyword_weight = 0.0
        try:
            hits = await built.search(PARAPHRASE, 5)
        finally:
            built.keyword_weight = default
        assert hits[0].document.id == DPR
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert DPR in [h.document.id for h in await built.search(PARAPHRASE, 3)]

    async def test_min_similarity_filters_off_topic(self, built: LibraryIndex) -> None:
        """An off-topic query finds nothing at min_similarity 0.3 (the service default)."""
        built.min_similarity = 0.3
        try:
            assert await built.search("zebrafish fin regeneration in aquaria", 10) == []
        finally:
            built.min_similarity = 0.0

    async def test_remove_and_add_back(self, built: LibraryIndex) -> None:
        """remove() takes a document's passages out of searches and changes the version;
        adding the same content back restores the version."""
        before, changes = built.version, built.changes
        question = "Who signs off expense reports above 2,000 euros?"
        assert (await built.search(question, 1))[0].document.id == "library:acme_handbook"
        assert built.remove("library:acme_handbook")
        assert not built.remove("library:acme_handbook")
        assert built.version != before
        assert built.changes > changes
        hits = await built.search(question, 60)
        assert "library:acme_handbook" not in {h.document.id for h in hits}
        _handbook(built)
        assert built.version == before
        assert not built.is_embedded("library:acme_handbook")
        assert await built.embed_pending() == 0  # its vectors come back from the store
        assert built.is_embedded("library:acme_handbook")
        assert (await built.search(question, 1))[0].document.id == "library:acme_handbook"

    async def test_source_falls_back_to_bm25(
        self,
        embedding_client: Any,
        unreachable_embedding: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """When the query cannot be embedded, the source answers by keywords with a warning."""
        index = LibraryIndex(embedding_client)
        _handbook(index)
        await index.embed_pending()
        index.embedder = unreachable_embedding
        with caplog.at_level(logging.WARNING, logger=INDEX_LOGGER):
            found = await LibrarySource(index).search(Query("quantum annealing batch jobs", 3))
        assert found[0].id == "library:acme_handbook"
        assert found[0].passages[0].passage.heading.endswith("Scheduling")
        assert [r.getMessage() for r in caplog.records] == ["library falls back to keywords"]


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
