"""Deterministic text helpers: sentences, tokens, stems, similarity and topic terms."""

import pytest

from ponder_reflection.text_analysis import (
    content_terms,
    extract_topic_terms,
    idf,
    jaccard,
    similarity,
    split_blocks,
    split_sentences,
    stem,
    tokenize,
    word_count,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three?", ["One.", "Two!", "Three?"]),
        (
            "Models help, e.g. in QA. They also fail, i.e. sometimes.",
            ["Models help, e.g. in QA.", "They also fail, i.e. sometimes."],
        ),
        (
            "Lewis et al. (2020) proposed RAG. It works.",
            ["Lewis et al. (2020) proposed RAG.", "It works."],
        ),
        (
            "Lewis et al. Proposed nothing else.",
            ["Lewis et al. Proposed nothing else."],
        ),
        ("Accuracy rose by 3.5 points. Cost fell.", ["Accuracy rose by 3.5 points.", "Cost fell."]),
        ("See Fig. 2 for details. Done.", ["See Fig. 2 for details.", "Done."]),
        ("J. Smith wrote it. Then he left.", ["J. Smith wrote it.", "Then he left."]),
        ("It was in the U.S. Army. Really.", ["It was in the U.S. Army.", "Really."]),
        ("Version 2.0 shipped. It was fast.", ["Version 2.0 shipped.", "It was fast."]),
        ("Claim one [1]. Claim two [2][3].", ["Claim one [1].", "Claim two [2][3]."]),
        ("Marker after the stop. [4] Next one.", ["Marker after the stop. [4]", "Next one."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Wait... What happened?", ["Wait...", "What happened?"]),
        ("No terminal punctuation", ["No terminal punctuation"]),
        ("Visit example.com today. Thanks.", ["Visit example.com today.", "Thanks."]),
        ("", []),
    ],
)
def test_split_sentences_edge_cases(text: str, expected: list[str]) -> None:
    """Abbreviations, initials, decimals, quotes and citation markers do not break sentences."""
    assert split_sentences(text) == expected


def test_split_sentences_treats_blocks_as_boundaries() -> None:
    """Paragraphs, list items and headings end a sentence even without punctuation."""
    text = "Heading:\nFirst line\ncontinues here.\n\nSecond paragraph\n- item one\n- item two."
    assert split_sentences(text) == [
        "Heading:",
        "First line continues here.",
        "Second paragraph",
        "item one",
        "item two.",
    ]


def test_split_blocks_keeps_markdown_headings_separate() -> None:
    """A markdown heading line is a block of its own."""
    assert split_blocks("# Title\nBody text.") == ["# Title", "Body text."]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("models", "model"),
        ("studies", "study"),
        ("reasoning", "reason"),
        ("retrieved", "retriev"),
        ("retrieval", "retriev"),
        ("interval", "interv"),
        ("oval", "oval"),
        ("retrieving", "retriev"),
        ("retrieve", "retriev"),
        ("stopped", "stop"),
        ("processes", "process"),
        ("analysis", "analysis"),
        ("corpus", "corpus"),
        ("embeddings", "embed"),
        ("string", "string"),
        ("need", "need"),
    ],
)
def test_stem_strips_light_suffixes(word: str, expected: str) -> None:
    """Plural, -ing and -ed forms share a stem; short or exceptional words are left alone."""
    assert stem(word) == expected


def test_tokenize_drops_stop_words_numbers_and_markers() -> None:
    """Only stemmed content words remain, in order, lower-cased."""
    text = "The Transformers were trained in 2017 [3] and they are using attention!"
    assert tokenize(text) == ["transformer", "train", "attention"]


def test_content_terms_match_across_inflections() -> None:
    """Different inflections of the same words give the same term set."""
    assert content_terms("Retrieving documents") == content_terms("retrieved document")


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ({"a", "b"}, {"a", "b"}, 1.0),
        ({"a", "b"}, {"b", "c"}, 1 / 3),
        ({"a"}, {"b"}, 0.0),
        (set(), set(), 0.0),
    ],
)
def test_jaccard(first: set[str], second: set[str], expected: float) -> None:
    """Jaccard is intersection over union, and 0.0 for two empty sets."""
    assert jaccard(first, second) == pytest.approx(expected)


def test_similarity_ignores_stop_words_and_markers() -> None:
    """Sentences with the same content words are identical whatever the filler."""
    assert similarity("The model retrieves passages [1].", "A model retrieved a passage.") == 1.0


def test_extract_topic_terms_skips_filler_and_keeps_surface() -> None:
    """Instruction words are dropped; each term keeps the word the topic used."""
    terms = extract_topic_terms("Explain how retrieval-augmented generation reduces hallucinations")
    assert [t.stem for t in terms] == [
        "retriev",
        "augment",
        "generation",
        "reduc",
        "hallucination",
    ]
    assert terms[-1].surface == "hallucinations"


def test_extract_topic_terms_deduplicates_by_stem() -> None:
    """A term that appears twice in different forms is listed once."""
    terms = extract_topic_terms("models and model evaluation")
    assert [t.stem for t in terms] == ["model", "evaluation"]


def test_idf_weights_rare_terms_higher() -> None:
    """A term in fewer documents weighs more, and unseen terms weigh most."""
    term_sets = [{"model", "retrieval"}, {"model"}, {"model", "attention"}]
    assert idf("retrieval", term_sets) > idf("model", term_sets) > 0
    assert idf("unseen", term_sets) > idf("retrieval", term_sets)


def test_word_count_counts_whitespace_tokens() -> None:
    """Word counts add up over several texts."""
    assert word_count("one two", " three\nfour ", "") == 4
