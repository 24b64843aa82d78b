"""The cache's equivalence verifier, table-driven: the labelled pairs of
tests/data/cache_pairs.jsonl and cache_pairs_blind.jsonl, and further cases in neither file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder_embedding.cache.verifier import Verifier
from ponder_embedding.cache.verifier.lexicon import Lexicon


DATA = Path(__file__).resolve().parents[2] / "data"
MAIN = [
    json.loads(line)
    for line in (DATA / "cache_pairs.jsonl").read_text().splitlines()
    if line.strip()
]
BLIND = [
    json.loads(line)
    for line in (DATA / "cache_pairs_blind.jsonl").read_text().splitlines()
    if line.strip()
]
ROWS = MAIN + BLIND


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    """One verifier with the packaged lexicon."""
    return Verifier()


def test_the_evaluation_set_has_every_category() -> None:
    """At least 300 pairs, 11 categories, each with at least 25 pairs."""
    categories: dict[str, int] = {}
    for row in MAIN:
        categories[row["category"]] = categories.get(row["category"], 0) + 1
    assert len(MAIN) >= 300
    assert len(categories) == 11
    assert min(categories.values()) >= 25


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['category']}-{i}" for i, r in enumerate(ROWS)])
def test_labelled_pair(verifier: Verifier, row: dict[str, str]) -> None:
    """must_differ pairs are rejected, may_share pairs accepted (either order)."""
    for a, b in ((row["a"], row["b"]), (row["b"], row["a"])):
        verdict = verifier.verify(a, b)
        assert verdict.accepted is (row["label"] == "may_share"), (a, b, str(verdict))


REJECTED = [
    # (query, candidate, category, words the reason names)
    (
        "Why does self-consistency improve reasoning?",
        "Why does self-consistency fail to improve reasoning?",
        "polarity",
        ['"fail"'],
    ),
    (
        "Is dropout needed for small transformers?",
        "Is dropout not needed for small transformers?",
        "polarity",
        ['"not"'],
    ),
    (
        "Which agents work without a planner?",
        "Which agents work with a planner?",
        "polarity",
        ['"without"'],
    ),
    (
        "Why do vision models lack robustness?",
        "Why do vision models have robustness?",
        "polarity",
        ['"lack"'],
    ),
    (
        "Why does pruning increase sparsity?",
        "Why does pruning reduce sparsity?",
        "antonym",
        ['"increase"', '"reduce"'],
    ),
    (
        "Is label smoothing helpful for calibration?",
        "Is label smoothing unhelpful for calibration?",
        "antonym",
        ['"helpful"', '"unhelpful"'],
    ),
    (
        "Why are autoregressive decoders irreversible?",
        "Why are autoregressive decoders reversible?",
        "antonym",
        ['"irreversible"', '"reversible"'],
    ),
    (
        "Do agents agree on tool choices?",
        "Do agents disagree on tool choices?",
        "antonym",
        ['"agree"', '"disagree"'],
    ),
    (
        "Why do smaller batches generalize better?",
        "Why do smaller batches generalize worse?",
        "antonym",
        [],
    ),
    (
        "Is BM25 better than SPLADE for legal search?",
        "Is SPLADE better than BM25 for legal search?",
        "role_order",
        ['"BM25"', '"SPLADE"'],
    ),
    (
        "How to migrate embeddings from Chroma to Qdrant?",
        "How to migrate embeddings from Qdrant to Chroma?",
        "role_order",
        [],
    ),
    (
        "Why does Gemma beat Phi on reasoning?",
        "Why does Phi beat Gemma on reasoning?",
        "role_order",
        [],
    ),
    (
        "What did the 2019 T5 paper show?",
        "What did the 2021 T5 paper show?",
        "number",
        ['"2019"', '"2021"'],
    ),
    (
        "How fast is Llama-3 8B on a laptop?",
        "How fast is Llama-3 70B on a laptop?",
        "number",
        ['"8B"', '"70B"'],
    ),
    ("What does GPT-4o add over GPT-4?", "What does GPT-4o add over GPT-3.5?", "number", []),
    ("Why does two-tower retrieval scale?", "Why does three-tower retrieval scale?", "number", []),
    (
        "How does Qdrant filter payloads?",
        "How does Chroma filter payloads?",
        "entity",
        ['"Qdrant"', '"Chroma"'],
    ),
    ("How is DPR trained?", "How is ColBERT trained?", "entity", []),
    (
        "How do agents browse the web?",
        "How do agents browse the web on mobile?",
        "content",
        ['"mobile"'],
    ),
    (
        "What is the best retriever for code search?",
        "What is the best retriever for biomedical code search?",
        "content",
        ['"biomedical"'],
    ),
]

ACCEPTED = [
    ("Why does chain-of-thought help LLMs?", "Why does CoT help large language models?"),
    ("What is ICL?", "What is in-context learning?"),
    (
        "How does DPR work for open domain QA?",
        "How does dense passage retrieval work for open-domain question answering?",
    ),
    ("How can I lower the cost of LLM inference?", "How can I reduce the cost of LLM inference?"),
    ("What are the downsides of vector search?", "What are the disadvantages of vector search?"),
    ("What makes RLHF effective?", "Why does RLHF work?"),
    ("how does a re-ranker work", "How does a reranker work?"),
    ("Compare DPR and BM25 on TriviaQA.", "Compare BM25 and DPR on TriviaQA."),
    ("On TriviaQA, how does DPR perform?", "How does DPR perform on TriviaQA?"),
    ("Why doesn't RAG remove hallucinations?", "Why does RAG not remove hallucinations?"),
    ("What is GPT-4?", "what is gpt4"),
    ("How many layers does BERT-base have?", "How many layers does BERT base have?"),
]


@pytest.mark.parametrize(("query", "candidate", "category", "named"), REJECTED)
def test_rejected_with_its_reason(
    verifier: Verifier, query: str, candidate: str, category: str, named: list[str]
) -> None:
    """Pairs outside the data file are rejected in the right category, naming the words."""
    verdict = verifier.verify(query, candidate)
    assert not verdict.accepted
    assert verdict.category == category, str(verdict)
    for word in named:
        assert word in verdict.reason, str(verdict)


@pytest.mark.parametrize(("query", "candidate"), ACCEPTED)
def test_paraphrase_accepted(verifier: Verifier, query: str, candidate: str) -> None:
    """Paraphrases outside the data file are accepted."""
    verdict = verifier.verify(query, candidate)
    assert verdict.accepted, str(verdict)
    assert str(verdict).startswith("accepted: ")


def test_reasons_read_as_the_issue_describes(verifier: Verifier) -> None:
    """The reason string is the rejection written out, e.g. 'polarity differs ("fail")'."""
    verdict = verifier.verify(
        "Why does self-consistency improve reasoning?",
        "Why does self-consistency fail to improve reasoning?",
    )
    assert str(verdict) == 'rejected: polarity differs ("fail")'


def test_embedding_text_brings_acronyms_and_expansions_together(verifier: Verifier) -> None:
    """Both forms of a paraphrase are embedded as the same normalised text."""
    assert verifier.embedding_text(
        "DPR for open domain question answering"
    ) == verifier.embedding_text("dense passage retrieval for open-domain QA")


def test_the_stem_memo_stays_bounded_and_right() -> None:
    """Endless new words (a hostile client) never grow the stem memo past its limit, and stems
    stay the same once it has started again."""
    lexicon = Lexicon.load()
    lexicon.stem_memo_limit = 100
    first = [lexicon.stem(word) for word in ("improving", "failures", "reasoning")]
    for number in range(1_000):
        lexicon.stem(f"word{'x' * (number % 7)}ing{number}")
        assert len(lexicon._stems) <= 100
    assert [lexicon.stem(word) for word in ("improving", "failures", "reasoning")] == first
    assert first == ["improv", "failur", "reason"]
