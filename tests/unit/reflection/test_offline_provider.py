"""The offline extractive provider: drafts quote and cite sources, critiques measure gaps,
refinements fix them without lowering the score."""

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import ponder_reflection
from ponder_reflection.citations import cited_indices, find_markers
from ponder_reflection.loop import reflect
from ponder_reflection.offline import OfflineProvider
from ponder_reflection.text_analysis import split_blocks, split_sentences, word_count
from ponder_reflection.types import Critique, ReflectionSpec, SourceDocument


pytestmark = pytest.mark.asyncio

RAG_TOPIC = "How retrieval-augmented generation reduces hallucinations in language models"
TRANSFORMER_TOPIC = "transformer attention"
MARKER_AT_END = re.compile(r"\[\d+\][.!?]?$")
PACKAGE_ROOT = str(Path(ponder_reflection.__file__).resolve().parent.parent)
TESTS_DIR = str(Path(__file__).resolve().parent)


def claims_of(text: str) -> list[str]:
    """The sentences of a text after its heading block."""
    return [s for block in split_blocks(text)[1:] for s in split_sentences(block)]


def source_body(sentence: str) -> str:
    """A text sentence without its trailing markers and final punctuation."""
    return re.sub(r"(?:\s*\[\d+\])+[.!?]?$", "", sentence)


async def test_draft_cites_only_supplied_documents(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Every marker in a draft points into the document list."""
    drafted = await provider.draft(RAG_TOPIC, documents)
    indices = cited_indices(drafted.text)
    assert indices
    assert all(1 <= i <= len(documents) for i in indices)


async def test_draft_names_topic_then_three_to_six_cited_sentences(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """The first line names the topic; each following sentence ends with its marker."""
    drafted = await provider.draft(RAG_TOPIC, documents)
    first_line = drafted.text.splitlines()[0]
    assert RAG_TOPIC in first_line
    claims = claims_of(drafted.text)
    assert 3 <= len(claims) <= 6
    assert all(MARKER_AT_END.search(claim) for claim in claims)


async def test_draft_quotes_the_sentence_from_the_cited_document(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Extractive: each sentence's words come from the document its marker cites."""
    drafted = await provider.draft(RAG_TOPIC, documents)
    for claim in claims_of(drafted.text):
        (index,) = cited_indices(claim)
        assert source_body(claim) in documents[index - 1].text


async def test_draft_picks_topic_relevant_sentences(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """A chain-of-thought topic cites the chain-of-thought paper and nothing unrelated."""
    drafted = await provider.draft("chain-of-thought reasoning", documents)
    assert cited_indices(drafted.text) == (3,)
    assert "intermediate reasoning steps" in drafted.text


async def test_draft_for_rag_topic_uses_rag_and_hallucination_sources(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """The RAG paper and the hallucination survey are cited; the Transformer paper is not."""
    drafted = await provider.draft(RAG_TOPIC, documents)
    indices = cited_indices(drafted.text)
    assert {1, 5} <= set(indices)
    assert 4 not in indices
    assert "mitigate hallucinations [5]" in drafted.text


async def test_draft_skips_redundant_sentences(provider: OfflineProvider) -> None:
    """A near-copy of a chosen sentence in a lower-ranked document is not quoted again."""
    sentence = "Retrieval grounding reduces hallucination in generated answers."
    documents = (
        SourceDocument("a", "First", f"{sentence} Retrieval needs a good index."),
        SourceDocument("b", "Second", f"{sentence} Grounding answers needs retrieval."),
    )
    drafted = await provider.draft("retrieval grounding hallucination", documents)
    assert drafted.text.count("reduces hallucination") == 1
    assert f"{sentence[:-1]} [1]." in drafted.text


async def test_draft_counts_words_as_usage(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Prompt tokens count the topic and documents, completion tokens the draft."""
    drafted = await provider.draft(RAG_TOPIC, documents)
    expected_prompt = word_count(RAG_TOPIC, *(f"{d.title} {d.text}" for d in documents))
    assert drafted.usage.prompt_tokens == expected_prompt
    assert drafted.usage.completion_tokens == word_count(drafted.text)


async def test_draft_with_no_documents_says_so(provider: OfflineProvider) -> None:
    """Without sources the draft restates the topic, says so and cites nothing."""
    drafted = await provider.draft("quantum error correction", ())
    assert "No sources were supplied" in drafted.text
    assert '"quantum error correction"' in drafted.text
    assert find_markers(drafted.text) == ()


async def test_critique_of_no_sources_draft_is_low(provider: OfflineProvider) -> None:
    """The no-sources text scores low with a "no sources" issue."""
    drafted = await provider.draft("quantum error correction", ())
    critiqued = await provider.critique("quantum error correction", (), drafted.text)
    assert critiqued.critique.score <= 2.0
    assert any("no sources" in issue.lower() for issue in critiqued.critique.issues)


async def test_draft_when_no_document_mentions_the_topic(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Off-topic sources are not passed off as findings: the draft says none mention it."""
    drafted = await provider.draft("quantum gravity", documents)
    assert drafted.text.startswith(
        'None of the 6 supplied sources has a sentence about "quantum" or "gravity"'
    )
    assert find_markers(drafted.text) == ()
    critiqued = await provider.critique("quantum gravity", documents, drafted.text)
    assert critiqued.critique.score <= 2.0


CLEAN = (
    "The Transformer relies on attention mechanisms [4]. "
    "Training is far more parallelizable than with recurrent networks [4]."
)


async def test_title_only_match_is_not_evidence(provider: OfflineProvider) -> None:
    """A document whose title matches but whose text is empty yields no fabricated findings."""
    documents = (SourceDocument("a", "Retrieval-augmented generation", ""),)
    drafted = await provider.draft("retrieval-augmented generation", documents)
    assert drafted.text.startswith("The supplied source has no sentence about")
    assert find_markers(drafted.text) == ()


async def test_critique_of_text_without_gaps_scores_ten(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """A covered, cited, non-redundant text has no issues and scores 10."""
    critiqued = await provider.critique(TRANSFORMER_TOPIC, documents, CLEAN)
    assert critiqued.critique == Critique(10.0, (), ())


@dataclass(frozen=True)
class GapCase:
    """A crafted text with one kind of gap, and the issue and suggestion it must get."""

    topic: str
    text: str
    issue: str
    suggestion: str


GAP_CASES = [
    pytest.param(
        GapCase(
            "retrieval-augmented generation and hallucinations",
            "Retrieval-augmented generation (RAG) combines a parametric model with a memory [1]. "
            "RAG models produce more specific, diverse and factual text [1].",
            'Topic term "hallucinations" is not covered',
            'Add evidence about "hallucinations" from [5]',
        ),
        id="missing-topic-term",
    ),
    pytest.param(
        GapCase(
            TRANSFORMER_TOPIC,
            "The Transformer relies on attention mechanisms [4]. It needs no recurrence [4]. "
            "Training is far more parallelizable than with recurrent networks.",
            'Sentence 3 has no citation: "Training is far more parallelizable',
            'Cite its source [4] "Attention Is All You Need"',
        ),
        id="uncited-sentence",
    ),
    pytest.param(
        GapCase(
            TRANSFORMER_TOPIC,
            "The Transformer relies solely on attention mechanisms [4]. "
            "The Transformer relies on attention mechanisms alone [4]. "
            "Training is far more parallelizable than with recurrent networks [4].",
            "Sentences 1 and 2 repeat each other (similarity 0.67)",
            "Remove sentence 2 or merge it into sentence 1",
        ),
        id="redundant-pair",
    ),
    pytest.param(
        GapCase(
            "dense passage retrieval",
            "Dense passage retrieval learns embeddings for questions and passages [2]. "
            "The dense retriever outperforms BM25 in passage retrieval accuracy [2].",
            'Relevant source [5] "A Survey on Hallucination in Large Language Models" '
            "is never cited",
            'Add evidence about "passage" from [5]',
        ),
        id="relevant-source-uncited",
    ),
    pytest.param(
        GapCase(
            TRANSFORMER_TOPIC,
            "The Transformer relies on attention mechanisms [4]. "
            "Training is far more parallelizable than with recurrent networks [4][9].",
            "Citation [9] points to no supplied document (valid numbers are 1 to 6)",
            "Remove [9] or cite one of [1] to [6]",
        ),
        id="invalid-citation",
    ),
    pytest.param(
        GapCase(
            TRANSFORMER_TOPIC,
            "The Transformer relies on attention mechanisms [4].",
            "Only 1 sentence(s) cite a source; at least 2 are expected",
            "Add cited sentences from the supplied sources",
        ),
        id="too-short",
    ),
]


@pytest.mark.parametrize("case", GAP_CASES)
async def test_critique_finds_each_kind_of_gap(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...], case: GapCase
) -> None:
    """Each crafted gap yields its issue with the matching suggestion and costs points."""
    critique = (await provider.critique(case.topic, documents, case.text)).critique
    matches = [i for i, found in enumerate(critique.issues) if found.startswith(case.issue)]
    assert matches, critique.issues
    assert critique.suggestions[matches[0]] == case.suggestion
    assert len(critique.issues) == len(critique.suggestions)
    assert 0.0 <= critique.score < 10.0


async def test_critique_score_is_ten_minus_penalties(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """One invalid citation costs 1.5 points and nothing else on an otherwise clean text."""
    text = CLEAN.replace("networks [4].", "networks [4][7].")
    critique = (await provider.critique(TRANSFORMER_TOPIC, documents, text)).critique
    assert critique.score == 8.5
    assert len(critique.issues) == 1


async def test_critique_score_is_clamped_at_zero(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Many gaps never push the score below 0."""
    text = " ".join(f"Unrelated claim number {word} [{n}]." for n, word in enumerate("abcdefgh", 7))
    critique = (await provider.critique(RAG_TOPIC, documents, text)).critique
    assert critique.score == 0.0


@pytest.mark.parametrize("case", GAP_CASES)
async def test_refine_fixes_the_named_gap_and_raises_the_score(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...], case: GapCase
) -> None:
    """After refining, the gap's issue is gone and the score went up."""
    before = (await provider.critique(case.topic, documents, case.text)).critique
    refined = await provider.refine(case.topic, documents, case.text, before)
    after = (await provider.critique(case.topic, documents, refined.text)).critique
    assert after.score > before.score
    assert not any(found.startswith(case.issue) for found in after.issues), after.issues


@pytest.mark.parametrize(
    "topic",
    [RAG_TOPIC, "chain-of-thought reasoning", "dense passage retrieval", "self-refine feedback"],
)
async def test_refine_of_a_draft_never_lowers_the_score(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...], topic: str
) -> None:
    """Refining the provider's own draft scores at least as well on the next critique."""
    text = (await provider.draft(topic, documents)).text
    for _ in range(3):
        before = (await provider.critique(topic, documents, text)).critique
        text = (await provider.refine(topic, documents, text, before)).text
        after = (await provider.critique(topic, documents, text)).critique
        assert after.score >= before.score


async def test_refine_adds_a_cited_sentence_for_a_missing_topic_term(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """A missing topic term is covered by the best source sentence with its marker."""
    topic = "retrieval-augmented generation and hallucinations"
    text = (
        "Retrieval-augmented generation (RAG) combines a parametric model with a memory [1]. "
        "RAG models produce more specific, diverse and factual text [1]."
    )
    critique = (await provider.critique(topic, documents, text)).critique
    refined = (await provider.refine(topic, documents, text, critique)).text
    assert (
        "Grounding generation in retrieved evidence is one of the most effective ways to "
        "mitigate hallucinations [5]."
    ) in refined
    assert refined.startswith(text)


async def test_refine_covers_a_missing_term_even_when_its_source_is_already_cited(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """The missing term itself drives the addition: [5] is cited, yet its term is added."""
    topic = "retrieval and hallucinations"
    text = (
        "Retrieval-augmented generation (RAG) combines a parametric model with a memory [1]. "
        "Retrieval can still fail when the retrieved passages are irrelevant or outdated [5]."
    )
    critique = (await provider.critique(topic, documents, text)).critique
    assert 'Topic term "hallucinations" is not covered' in critique.issues
    refined = (await provider.refine(topic, documents, text, critique)).text
    added = [claim for claim in claims_of("Heading:\n\n" + refined) if claim not in text]
    covering = [claim for claim in added if "hallucination" in claim.lower()]
    assert len(covering) == 1
    assert cited_indices(covering[0]) == (5,)
    assert source_body(covering[0]) in documents[4].text
    after = (await provider.critique(topic, documents, refined)).critique
    assert not any("hallucinations" in issue for issue in after.issues)


async def test_refine_cites_an_uncited_source_on_the_sentence_it_repeats(
    provider: OfflineProvider,
) -> None:
    """A relevant source that only repeats a cited sentence is added to that sentence."""
    sentence = "Retrieval grounding reduces hallucination in generated answers"
    documents = (
        SourceDocument("a", "First", f"{sentence}. Retrieval needs a good index of passages."),
        SourceDocument("b", "Second", f"{sentence}."),
    )
    text = f"{sentence} [1]. Retrieval needs a good index of passages [1]."
    topic = "retrieval grounding hallucination"
    critique = (await provider.critique(topic, documents, text)).critique
    assert critique.issues == ('Relevant source [2] "Second" is never cited',)
    refined = (await provider.refine(topic, documents, text, critique)).text
    assert refined == f"{sentence} [1][2]. Retrieval needs a good index of passages [1]."


async def test_refine_attaches_a_marker_to_a_matching_uncited_sentence(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """An uncited sentence that a source sentence supports gets that source's marker."""
    text = (
        "Dense passage retrieval learns embeddings for questions and passages [2]. "
        "The dense retriever outperforms a strong BM25 system in passage retrieval accuracy."
    )
    critique = (await provider.critique("dense passage retrieval", documents, text)).critique
    refined = (await provider.refine("dense passage retrieval", documents, text, critique)).text
    assert "in passage retrieval accuracy [2]." in refined


async def test_refine_drops_invalid_markers_and_redundant_sentences(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Invalid markers disappear and the later of two redundant sentences is dropped."""
    text = (
        "The Transformer relies solely on attention mechanisms [4][8]. "
        "The Transformer relies on attention mechanisms alone [4]. "
        "Training is far more parallelizable than with recurrent networks [4]."
    )
    critique = (await provider.critique(TRANSFORMER_TOPIC, documents, text)).critique
    refined = (await provider.refine(TRANSFORMER_TOPIC, documents, text, critique)).text
    assert "[8]" not in refined
    assert "mechanisms alone" not in refined
    assert "The Transformer relies solely on attention mechanisms [4]." in refined


async def test_refine_without_issues_returns_the_text_unchanged(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """A critique with nothing to fix leaves the text exactly as it was."""
    refined = await provider.refine(TRANSFORMER_TOPIC, documents, CLEAN, Critique(10.0, (), ()))
    assert refined.text == CLEAN


async def test_refine_with_no_documents_invents_nothing(provider: OfflineProvider) -> None:
    """Without sources refine cannot add evidence; it only drops markers."""
    text = "Quantum codes protect qubits [2]."
    critique = (await provider.critique("quantum codes", (), text)).critique
    refined = await provider.refine("quantum codes", (), text, critique)
    assert refined.text == "Quantum codes protect qubits."


async def test_provider_identity() -> None:
    """The offline provider names itself and its model and says it is offline."""
    provider = OfflineProvider()
    assert (provider.name, provider.model, provider.offline) == ("offline", "extractive-v1", True)


async def test_one_reflection_builds_its_corpus_once(
    provider: OfflineProvider, documents: tuple[SourceDocument, ...]
) -> None:
    """Every draft, critique and refine call of one reflection reads the same prepared corpus;
    another topic gets its own."""
    outcome = await reflect(provider, ReflectionSpec(RAG_TOPIC, documents, 3, 10.0))
    info = provider._corpora.get.cache_info()
    assert len(outcome.steps) >= 3
    assert (info.misses, info.hits) == (1, len(outcome.steps) - 1)
    await provider.draft(TRANSFORMER_TOPIC, documents)
    assert provider._corpora.get.cache_info().misses == 2


DRAFT_SCRIPT = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from conftest import DOCS
from ponder_reflection.loop import reflect
from ponder_reflection.offline import OfflineProvider
from ponder_reflection.types import ReflectionSpec
spec = ReflectionSpec(sys.argv[2], DOCS, 3, 10.0)
outcome = asyncio.run(reflect(OfflineProvider(), spec))
print(repr((outcome.text, outcome.iterations, outcome.score, outcome.citations)))
"""


async def test_output_is_identical_across_hash_seeds() -> None:
    """Two processes with different string-hash seeds produce the same loop result."""
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": PACKAGE_ROOT}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            DRAFT_SCRIPT,
            TESTS_DIR,
            RAG_TOPIC,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await process.communicate()
        assert process.returncode == 0
        outputs.append(stdout)
    assert outputs[0] == outputs[1]
    assert b"[1]" in outputs[0]
