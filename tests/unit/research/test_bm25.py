"""tokenize() and BM25: content words, ranking order, limits, no-match, add and remove."""

from collections.abc import Sequence

import pytest

from ponder_research.bm25 import BM25, tokenize


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


class Indexed:
    """BM25 over texts keyed by position (zero-padded, so key order is position order)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.bm25 = BM25()
        for position, text in enumerate(texts):
            self.bm25.add(f"{position:04d}", text)

    def __len__(self) -> int:
        return len(self.bm25)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """(position, score) pairs, best first."""
        return [(int(key), score) for key, score in self.bm25.search(query, limit)]


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
        assert len(Indexed(DOCS)) == 5
        assert len(Indexed([])) == 0

    def test_more_occurrences_rank_higher(self) -> None:
        """The text that repeats the query term most ranks first."""
        results = Indexed(DOCS).search("retrieval", 10)
        assert [index for index, _ in results] == [1, 0]
        assert results[0][1] > results[1][1] > 0

    def test_rare_terms_weigh_more(self) -> None:
        """A match on a rare term beats a match on a common one."""
        # Equal lengths; "apple" is in three texts, "kiwi" in one.
        index = Indexed(["apple banana", "apple cherry", "apple date", "kiwi fig"])
        results = index.search("apple kiwi", 10)
        assert [i for i, _ in results] == [3, 0, 1, 2]
        assert results[0][1] > results[1][1]

    def test_shorter_text_wins_for_the_same_match(self) -> None:
        """With equal term counts, the shorter text ranks higher (length normalisation)."""
        index = Indexed(["language model", "language model " + "filler words " * 10])
        (first, first_score), (second, second_score) = index.search("model", 10)
        assert (first, second) == (0, 1)
        assert first_score > second_score

    def test_ties_keep_index_order(self) -> None:
        """Texts with the same score come in index order."""
        index = Indexed(["alpha beta", "gamma delta", "alpha beta"])
        assert [i for i, _ in index.search("alpha", 10)] == [0, 2]

    def test_limit(self) -> None:
        """At most `limit` results, the best ones."""
        results = Indexed(DOCS).search("retrieval language attention", 2)
        assert len(results) == 2
        everything = Indexed(DOCS).search("retrieval language attention", 10)
        assert results == everything[:2]

    def test_query_is_tokenized_like_the_texts(self) -> None:
        """Case, plurals and repeated query words do not change the match."""
        index = Indexed(DOCS)
        assert index.search("TRANSFORMERS", 10) == index.search("transformer transformer", 10)
        assert index.search("transformer", 10)[0][0] == 3

    @pytest.mark.parametrize(
        "query", ["quantum chromodynamics", "the of and", ""], ids=["unknown", "stop", "empty"]
    )
    def test_no_match_returns_empty(self, query: str) -> None:
        """A query with no indexed content word returns no results."""
        assert Indexed(DOCS).search(query, 10) == []

    def test_empty_index(self) -> None:
        """Searching an empty index returns nothing."""
        assert Indexed([]).search("retrieval", 10) == []

    def test_texts_without_content_words(self) -> None:
        """Texts made only of stop words match nothing (and do not crash the search)."""
        assert Indexed(["the", "of and"]).search("retrieval", 10) == []

    def test_space_separated_query_matches_hyphenated_text(self) -> None:
        """A query "retrieval augmented" finds a text about "Retrieval-Augmented" generation."""
        index = Indexed(["Retrieval-Augmented Generation", "Image classification"])
        assert [i for i, _ in index.search("retrieval augmented", 10)] == [0]


class TestAddRemove:
    def test_remove_forgets_a_text_and_its_statistics(self) -> None:
        """After remove(), the text is not found and scores equal an index built without it."""
        index = Indexed(DOCS)
        index.bm25.remove("0001")
        index.bm25.remove("unknown")
        assert len(index) == 4
        without = Indexed([DOCS[0], *DOCS[2:]])
        assert [s for _, s in index.search("retrieval", 10)] == [
            s for _, s in without.search("retrieval", 10)
        ]
        assert [k for k, _ in index.search("retrieval", 10)] == [0]

    def test_add_replaces_the_same_key(self) -> None:
        """Adding under an existing key replaces its text."""
        index = Indexed(DOCS)
        index.bm25.add("0000", "kiwi fig")
        assert [k for k, _ in index.search("kiwi", 10)] == [0]
        assert [k for k, _ in index.search("passage", 10)] == []
        assert len(index) == 5
