"""dedupe(): the same document found through several sources becomes one (arXiv id, DOI,
normalised URL, normalised title, or near-identical titles by embedding)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ponder_research.dedupe import TITLE_SIMILARITY, dedupe, identity_keys
from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.embedding_client import EmbeddingClient


ARXIV, WEB, LIBRARY = SourceKind.ARXIV, SourceKind.WEB, SourceKind.LIBRARY


def _doc(doc_id: str, title: str, source: SourceKind, **fields: Any) -> FoundDocument:
    values: dict[str, Any] = {"summary": f"summary of {doc_id}", "found_in": (source,), **fields}
    return FoundDocument(id=doc_id, title=title, source=source, **values)


RAG_ARXIV = _doc(
    "arxiv:2005.11401",
    "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
    ARXIV,
    summary="arXiv abstract",
    authors=("Patrick Lewis", "Ethan Perez"),
    url="https://arxiv.org/abs/2005.11401",
    published=dt.date(2020, 5, 22),
    updated=dt.date(2021, 4, 12),
    categories=("cs.CL", "cs.LG"),
    pdf_url="http://arxiv.org/pdf/2005.11401v4",
    arxiv_id="2005.11401",
    score=0.2,
    source_rank=4,
)
RAG_WEB = _doc(
    "web:example.org/rag-mirror",
    "RAG paper (mirror)",
    WEB,
    summary="a web snippet",
    url="https://example.org/rag-mirror",
    arxiv_id="2005.11401",
    score=0.9,
    source_rank=1,
)
RAG_LIBRARY = _doc(
    "arxiv:2005.11401",
    "Retrieval augmented generation (library copy)",
    LIBRARY,
    summary="library summary",
    authors=("P. Lewis",),
    url="https://mirror.example.net/rag",
    published=dt.date(2020, 1, 1),
    doi="10.5555/rag.2020",
    arxiv_id="2005.11401",
    score=7.5,
    source_rank=2,
)


class TestKeys:
    async def test_same_arxiv_id_across_sources(self) -> None:
        """Results sharing only an arXiv id merge into one "arxiv:<id>" document: arXiv's
        metadata first, missing fields from the next preferred source, the best score, the
        smallest source_rank, and every source in found_in."""
        merged, removed = await dedupe([RAG_WEB, RAG_ARXIV, RAG_LIBRARY], None)
        assert removed == 2
        (doc,) = merged
        assert doc.id == "arxiv:2005.11401"
        assert doc.arxiv_id == "2005.11401"
        assert doc.source is ARXIV
        assert doc.found_in == (WEB, ARXIV, LIBRARY)
        assert doc.title == RAG_ARXIV.title
        assert doc.summary == "arXiv abstract"
        assert doc.authors == ("Patrick Lewis", "Ethan Perez")
        assert doc.url == "https://arxiv.org/abs/2005.11401"
        assert doc.published == dt.date(2020, 5, 22)
        assert doc.updated == dt.date(2021, 4, 12)
        assert doc.categories == ("cs.CL", "cs.LG")
        assert doc.pdf_url == "http://arxiv.org/pdf/2005.11401v4"
        assert doc.doi == "10.5555/rag.2020"  # arXiv had none: the library's
        assert doc.score == 7.5
        assert doc.source_rank == 1

    async def test_web_and_library_without_arxiv(self) -> None:
        """Without an arXiv result, the library's metadata wins over the web's and the id is
        "arxiv:<id>" all the same."""
        merged, removed = await dedupe([RAG_WEB, RAG_LIBRARY], None)
        assert removed == 1
        (doc,) = merged
        assert (doc.id, doc.source, doc.title) == ("arxiv:2005.11401", LIBRARY, RAG_LIBRARY.title)
        assert doc.found_in == (WEB, LIBRARY)
        assert (doc.score, doc.source_rank) == (7.5, 1)

    async def test_web_result_of_an_arxiv_page_gets_the_arxiv_id(self) -> None:
        """A lone web result with an arXiv id is reported as arxiv:<id>."""
        (doc,), removed = await dedupe([RAG_WEB], None)
        assert (doc.id, removed) == ("arxiv:2005.11401", 0)

    async def test_same_doi(self) -> None:
        """Results with the same DOI (any case) merge; nothing else is shared."""
        first = _doc("web:a.example/x", "Paper title", WEB, doi="10.1000/ABC.1")
        second = _doc("library:x", "Another title", LIBRARY, doi="10.1000/abc.1", score=3.0)
        merged, removed = await dedupe([first, second], None)
        assert removed == 1
        (doc,) = merged
        assert (doc.id, doc.source, doc.found_in) == ("library:x", LIBRARY, (WEB, LIBRARY))
        assert doc.score == 3.0

    async def test_same_normalized_url(self) -> None:
        """Results whose URLs normalise alike (scheme, www, slash, tracking) merge."""
        web = _doc(
            "web:example.com/post",
            "Blog post",
            WEB,
            url="https://www.example.com/post/?utm_source=x",
        )
        library = _doc("library:post", "My notes on it", LIBRARY, url="http://example.com/post")
        merged, removed = await dedupe([web, library], None)
        assert removed == 1
        assert [(d.id, d.found_in) for d in merged] == [("library:post", (WEB, LIBRARY))]
        assert merged[0].url == "http://example.com/post"

    async def test_same_title_up_to_case_and_spaces(self) -> None:
        """Titles equal up to case and whitespace merge."""
        a = _doc("library:a", "Attention Is All You Need", LIBRARY)
        b = _doc("web:b", "  attention is ALL  you need ", WEB)
        merged, removed = await dedupe([a, b], None)
        assert removed == 1
        assert merged[0].found_in == (LIBRARY, WEB)

    async def test_transitive_links(self) -> None:
        """A~B by DOI and B~C by URL make one document of all three."""
        a = _doc("web:a", "A", WEB, doi="10.1/x")
        b = _doc("library:b", "B", LIBRARY, doi="10.1/x", url="https://example.com/b")
        c = _doc("web:c", "C", WEB, url="https://example.com/b/")
        merged, removed = await dedupe([a, b, c], None)
        assert (len(merged), removed) == (1, 2)

    async def test_count_and_first_seen_order(self) -> None:
        """Distinct documents stay apart, in first-seen order; duplicates_removed counts the
        results merged away."""
        docs = [
            _doc("web:1", "One", WEB, url="https://one.example"),
            _doc("library:2", "Two", LIBRARY),
            _doc("library:1", "one", LIBRARY),
            _doc("arxiv:3", "Three", ARXIV, arxiv_id="3"),
            _doc("web:2", "TWO", WEB),
            _doc("web:1b", "One again", WEB, url="http://www.one.example/"),
        ]
        merged, removed = await dedupe(docs, None)
        assert removed == 3
        assert [d.title for d in merged] == ["one", "Two", "Three"]
        assert [len(d.found_in) for d in merged] == [2, 2, 1]

    async def test_nothing_to_merge(self) -> None:
        """Different documents pass through unchanged."""
        docs = [_doc("web:1", "One", WEB), _doc("library:2", "Two", LIBRARY)]
        assert await dedupe(docs, None) == (docs, 0)
        assert await dedupe([], None) == ([], 0)


TITLES = {
    "rag": "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
    "rag-plain": "Retrieval-Augmented Generation for Knowledge-Intensive Tasks in NLP",
    "attention": "Attention Is All You Need",
    "attention-dot": "Attention Is All That You Need",
    "dpr": "Dense Passage Retrieval for Open-Domain Question Answering",
    "gpt3": "Language Models are Few-Shot Learners",
}


def _titled(name: str, source: SourceKind) -> FoundDocument:
    return _doc(f"{source.value}:{name}", TITLES[name], source)


class TestTitleSimilarity:
    async def test_near_identical_titles_merge_by_embedding(
        self, embedding_client: EmbeddingClient
    ) -> None:
        """Titles worded slightly differently (cosine >= 0.95) merge through the embedding
        service; different papers do not."""
        docs = [
            _titled("rag", ARXIV),
            _titled("attention", LIBRARY),
            _titled("dpr", LIBRARY),
            _titled("rag-plain", WEB),
            _titled("attention-dot", WEB),
            _titled("gpt3", WEB),
        ]
        # No shared key: only the embedding can merge them.
        keys = [set(identity_keys(doc)) for doc in docs]
        assert all(a.isdisjoint(b) for i, a in enumerate(keys) for b in keys[i + 1 :])
        assert await dedupe(docs, None) == (docs, 0)

        merged, removed = await dedupe(docs, embedding_client)
        assert removed == 2
        assert [(d.title, d.found_in) for d in merged] == [
            (TITLES["rag"], (ARXIV, WEB)),
            (TITLES["attention"], (LIBRARY, WEB)),
            (TITLES["dpr"], (LIBRARY,)),
            (TITLES["gpt3"], (WEB,)),
        ]

    async def test_threshold(self, embedding_client: EmbeddingClient) -> None:
        """The merged pairs are at least TITLE_SIMILARITY similar, the others below."""
        names = list(TITLES)
        vectors = await embedding_client.embed([TITLES[n] for n in names])
        similarity = vectors @ vectors.T
        pairs = {("rag", "rag-plain"), ("attention", "attention-dot")}
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                merged_pair = (a, names[j]) in pairs
                assert (similarity[i, j] >= TITLE_SIMILARITY) == merged_pair, (a, names[j])

    async def test_punctuation_and_case_do_not_matter(self) -> None:
        """'Attention Is All You Need' and 'Attention is all you need!' are one document, by
        their normalised titles alone (no embedding needed)."""
        docs = [
            _doc("arxiv:1706.03762", "Attention Is All You Need", ARXIV),
            _doc("web:x", "Attention is all you need!", WEB),
        ]
        merged, removed = await dedupe(docs, None)
        assert (len(merged), removed) == (1, 1)

    async def test_embedding_unavailable_keeps_key_dedupe(
        self, unreachable_embedding: EmbeddingClient
    ) -> None:
        """When the embedding service cannot answer, key-based merging still happens."""
        docs = [
            _titled("rag", ARXIV),
            _titled("rag-plain", WEB),
            _doc("web:again", TITLES["rag"].upper(), WEB),
        ]
        merged, removed = await dedupe(docs, unreachable_embedding)
        assert removed == 1
        assert [d.title for d in merged] == [TITLES["rag"], TITLES["rag-plain"]]
