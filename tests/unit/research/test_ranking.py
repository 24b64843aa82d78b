"""rerank(): by cosine similarity through the embedding service, or, when it cannot answer,
by the sources' own orders interleaved (with a note saying why)."""

from __future__ import annotations

from typing import Any

import pytest

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.embedding_client import EmbeddingClient
from ponder_research.library import load_library
from ponder_research.ranking import Ranking, document_text, rerank, source_order


ARXIV, WEB, LIBRARY = SourceKind.ARXIV, SourceKind.WEB, SourceKind.LIBRARY
QUERY = "dense vector retrieval of passages for open-domain question answering"


@pytest.fixture(scope="module")
def papers() -> list[FoundDocument]:
    """Six papers of the sample library, in an order unrelated to the query."""
    wanted = ["2005.14165", "1706.03762", "2201.11903", "2004.04906", "1810.04805", "2005.11401"]
    by_id = {f.details.arxiv_id: f.details for f in load_library([]) if f.details}
    return [by_id[paper] for paper in wanted]


def _doc(doc_id: str, source: SourceKind, rank: int, **fields: Any) -> FoundDocument:
    return FoundDocument(
        id=doc_id, title=doc_id, summary="s", source=source, source_rank=rank, **fields
    )


class TestEmbeddingSimilarity:
    async def test_orders_by_cosine(
        self, papers: list[FoundDocument], embedding_client: EmbeddingClient
    ) -> None:
        """Documents come by descending cosine to the query (title + summary), the score is
        that cosine, nothing is lost, and the method is EMBEDDING_SIMILARITY."""
        ranked = await rerank(QUERY, papers, embedding_client, kinds=[LIBRARY])
        assert ranked.method is Ranking.EMBEDDING_SIMILARITY
        assert ranked.note == ""
        assert ranked.documents[0].arxiv_id == "2004.04906"
        assert sorted(d.id for d in ranked.documents) == sorted(d.id for d in papers)
        scores = [d.score for d in ranked.documents]
        assert scores == sorted(scores, reverse=True)

        vectors = await embedding_client.embed([QUERY, *(document_text(d) for d in papers)])
        cosine = {doc.id: float(vectors[i + 1] @ vectors[0]) for i, doc in enumerate(papers)}
        for doc in ranked.documents:
            assert doc.score == pytest.approx(cosine[doc.id], abs=1e-4)
        assert ranked.documents[0].score > ranked.documents[-1].score + 0.1

    async def test_identical_texts_score_alike(self, embedding_client: EmbeddingClient) -> None:
        """Documents with the same text all come back with the same similarity (to float
        precision; batching may change the last bits, so their order is not asserted)."""
        docs = [
            FoundDocument(id=f"library:{n}", title="Same title", summary="same", source=LIBRARY)
            for n in range(3)
        ]
        ranked = await rerank("anything", docs, embedding_client, kinds=[LIBRARY])
        assert sorted(d.id for d in ranked.documents) == ["library:0", "library:1", "library:2"]
        scores = [d.score for d in ranked.documents]
        assert max(scores) - min(scores) < 1e-5

    async def test_long_document_is_still_ranked(self, embedding_client: EmbeddingClient) -> None:
        """A document longer than the embedding service's text limit does not stop ranking."""
        docs = [
            FoundDocument(
                id="library:short", title="Short", summary="dense retrieval", source=LIBRARY
            ),
            FoundDocument(
                id="library:long", title="Long notes", summary="word " * 2000, source=LIBRARY
            ),
        ]
        ranked = await rerank(QUERY, docs, embedding_client, kinds=[LIBRARY])
        assert ranked.method is Ranking.EMBEDDING_SIMILARITY, ranked.note

    async def test_long_url_is_still_ranked(self, embedding_client: EmbeddingClient) -> None:
        """A web result with a 600-character URL does not stop ranking."""
        url = "https://example.com/search?q=" + "x" * 600
        docs = [
            FoundDocument(id="library:short", title="Short", summary="retrieval", source=LIBRARY),
            FoundDocument(id=f"web:{url[8:]}", title="Page", summary="page", source=WEB, url=url),
        ]
        ranked = await rerank(QUERY, docs, embedding_client, kinds=[LIBRARY, WEB])
        assert ranked.method is Ranking.EMBEDDING_SIMILARITY, ranked.note


class TestSourceOrder:
    DOCS = (
        _doc("arxiv:a0", ARXIV, 0),
        _doc("arxiv:a1", ARXIV, 1),
        _doc("arxiv:a2", ARXIV, 2),
        _doc("web:w0", WEB, 0),
        _doc("web:w1", WEB, 1),
        _doc("library:l0", LIBRARY, 0),
    )

    async def test_fallback_when_unavailable(self, unreachable_embedding: EmbeddingClient) -> None:
        """With the embedding service down: SOURCE_ORDER, a note saying "unavailable", the
        sources interleaved by rank in the requested order, score 1/(1 + rank)."""
        ranked = await rerank(
            "q", list(self.DOCS), unreachable_embedding, kinds=[LIBRARY, ARXIV, WEB]
        )
        assert ranked.method is Ranking.SOURCE_ORDER
        assert "unavailable" in ranked.note
        assert "UNAVAILABLE" in ranked.note  # the gRPC status is named
        assert [d.id for d in ranked.documents] == [
            "library:l0",
            "arxiv:a0",
            "web:w0",
            "arxiv:a1",
            "web:w1",
            "arxiv:a2",
        ]
        assert [d.score for d in ranked.documents] == pytest.approx(
            [1.0, 1.0, 1.0, 0.5, 0.5, 1 / 3]
        )

    async def test_no_client(self) -> None:
        """Without an embedding client: SOURCE_ORDER with "no embedding service configured"."""
        ranked = await rerank("q", list(self.DOCS), None, kinds=[WEB, ARXIV, LIBRARY])
        assert ranked.method is Ranking.SOURCE_ORDER
        assert ranked.note == "no embedding service configured"
        assert [d.id for d in ranked.documents][:3] == ["web:w0", "arxiv:a0", "library:l0"]

    async def test_empty(self, unreachable_embedding: Any) -> None:
        """No documents: nothing to rank, no call, no note."""
        ranked = await rerank("q", [], unreachable_embedding, kinds=[WEB])
        assert (ranked.documents, ranked.note) == ([], "")
        assert unreachable_embedding.rank_calls == []
        assert (await rerank("q", [], None, kinds=[WEB])).method is Ranking.SOURCE_ORDER

    def test_unrequested_source_goes_last_within_its_rank(self) -> None:
        """A source missing from `kinds` sorts after the listed ones at the same rank."""
        docs = [_doc("web:w0", WEB, 0), _doc("arxiv:a0", ARXIV, 0), _doc("arxiv:a1", ARXIV, 1)]
        assert [d.id for d in source_order(docs, [ARXIV])] == ["arxiv:a0", "web:w0", "arxiv:a1"]

    def test_scores_are_replaced(self) -> None:
        """Whatever the sources' scores, source order scores by rank only."""
        docs = [_doc("web:w0", WEB, 0, score=0.01), _doc("web:w3", WEB, 3, score=99.0)]
        assert [d.score for d in source_order(docs, [WEB])] == [1.0, 0.25]
