"""tokenize() and BM25Index: content words, ranking order, limits and no-match."""

import pytest

from ponder_research.bm25 import BM25Index, tokenize


class TestTokenize:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Attention Is All You Need", ["attention", "all", "need"]),
            ("Language MODELS", ["language", "model"]),
            ("loss class bus gas", ["loss", "class", "bus", "gas"]),
            ("GPT-4 uses self-attention", ["gpt", "4", "self", "attention"]),
            ("k=3, top-20 (BM25)!", ["k", "3", "top", "20", "bm25"]),
            ("the of and to with what", []),
            ("", []),
        ],
        ids=[
            "stop-words-dropped",
            "lowercase-and-plural",
            "no-stem-for-ss-or-short",
            "hyphenated-compound",
            "punctuation",
            "only-stop-words",
            "empty",
        ],
    )
    def test_tokenize(self, text: str, expected: list[str]) -> None:
        """Lowercase content words, stop words dropped, a crude plural stem."""
        assert tokenize(text) == expected

    def test_plural_and_singular_match(self) -> None:
        """ "transformers" and "transformer" become the same term."""
        assert tokenize("transformers") == tokenize("Transformer") == ["transformer"]


DOCS = [
    "Dense passage retrieval for open-domain question answering",
    "Retrieval augmented generation with a dense retrieval index and retrieval heads",
    "Chain of thought prompting elicits reasoning in large language models",
    "Attention is all you need: the transformer architecture",
    "Scaling laws for neural language models and their compute budget over many long runs",
]


class TestBM25Index:
    def test_length(self) -> None:
        """len() is the number of indexed texts."""
        assert len(BM25Index(DOCS)) == 5
        assert len(BM25Index([])) == 0

    def test_more_occurrences_rank_higher(self) -> None:
        """The text that repeats the query term most ranks first."""
        results = BM25Index(DOCS).search("retrieval", 10)
        assert [index for index, _ in results] == [1, 0]
        assert results[0][1] > results[1][1] > 0

    def test_rare_terms_weigh_more(self) -> None:
        """A match on a rare term beats a match on a common one."""
        # Equal lengths; "apple" is in three texts, "kiwi" in one.
        index = BM25Index(["apple banana", "apple cherry", "apple date", "kiwi fig"])
        results = index.search("apple kiwi", 10)
        assert [i for i, _ in results] == [3, 0, 1, 2]
        assert results[0][1] > results[1][1]

    def test_shorter_text_wins_for_the_same_match(self) -> None:
        """With equal term counts, the shorter text ranks higher (length normalisation)."""
        index = BM25Index(["language model", "language model " + "filler words " * 10])
        (first, first_score), (second, second_score) = index.search("model", 10)
        assert (first, second) == (0, 1)
        assert first_score > second_score

    def test_ties_keep_index_order(self) -> None:
        """Texts with the same score come in index order."""
        index = BM25Index(["alpha beta", "gamma delta", "alpha beta"])
        assert [i for i, _ in index.search("alpha", 10)] == [0, 2]

    def test_limit(self) -> None:
        """At most `limit` results, the best ones."""
        results = BM25Index(DOCS).search("retrieval language attention", 2)
        assert len(results) == 2
        everything = BM25Index(DOCS).search("retrieval language attention", 10)
        assert results == everything[:2]

    def test_query_is_tokenized_like_the_texts(self) -> None:
        """Case, plurals and repeated query words do not change the match."""
        index = BM25Index(DOCS)
        assert index.search("TRANSFORMERS", 10) == index.search("transformer transformer", 10)
        assert index.search("transformer", 10)[0][0] == 3

    @pytest.mark.parametrize(
        "query", ["quantum chromodynamics", "the of and", ""], ids=["unknown", "stop", "empty"]
    )
    def test_no_match_returns_empty(self, query: str) -> None:
        """A query with no indexed content word returns no results."""
        assert BM25Index(DOCS).search(query, 10) == []

    def test_empty_index(self) -> None:
        """Searching an empty index returns nothing."""
        assert BM25Index([]).search("retrieval", 10) == []

    def test_texts_without_content_words(self) -> None:
        """Texts made only of stop words match nothing (and do not crash the search)."""
        assert BM25Index(["the", "of and"]).search("retrieval", 10) == []

    def test_space_separated_query_matches_hyphenated_text(self) -> None:
        """A query "retrieval augmented" finds a text about "Retrieval-Augmented" generation."""
        index = BM25Index(["Retrieval-Augmented Generation", "Image classification"])
        assert [i for i, _ in index.search("retrieval augmented", 10)] == [0]
