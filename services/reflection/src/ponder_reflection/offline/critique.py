"""The measurable gaps of a text, priced by one table of penalties, and the score they leave."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from ..citations import cited_indices, invalid_citation_warning, is_valid_index
from ..provider import Critiqued
from ..text_analysis import jaccard, word_count
from ..types import Critique, TokenUsage
from .claims import Claim, drop_invalid_citations, parse, shorten
from .corpus import Corpus
from .tuning import MIN_CITED_SENTENCES, REDUNDANCY_THRESHOLD


# What each kind of gap takes off a text's score out of 10.
PENALTIES: Mapping[str, float] = {
    "no_sources": 8.0,
    "no_relevant_sources": 8.0,
    "missing_term": 1.0,
    "unsupported_term": 0.5,
    "uncited": 1.0,
    "redundant": 1.0,
    "uncited_source": 0.5,
    "invalid": 1.5,
    "too_short": 2.0,
}


class Gap(NamedTuple):
    """One measurable shortcoming of a text; `kind` tells refine how to fix it."""

    kind: str
    issue: str
    suggestion: str


def assess(corpus: Corpus, text: str) -> Critiqued:
    """Score `text` 0..10 by its measurable gaps, one issue and suggestion per gap."""
    gaps = find_gaps(corpus, text)
    issues = tuple(gap.issue for gap in gaps)
    suggestions = tuple(gap.suggestion for gap in gaps)
    critique = Critique(score(gaps), issues, suggestions)
    written = word_count(str(critique.score), *issues, *suggestions)
    return Critiqued(critique, TokenUsage(corpus.words_read(text), written))


def score(gaps: Iterable[Gap]) -> float:
    """10 less the penalties of `gaps`, within 0..10, to one decimal."""
    return round(min(10.0, max(0.0, 10.0 - sum(PENALTIES[gap.kind] for gap in gaps))), 1)


def find_gaps(corpus: Corpus, text: str) -> list[Gap]:
    """Every measurable gap of `text`, in a stable order."""
    count = len(corpus.documents)
    invalid = [
        Gap(
            "invalid",
            invalid_citation_warning(index, count),
            f"Remove [{index}]" + (f" or cite one of [1] to [{count}]" if count else ""),
        )
        for index in cited_indices(text)
        if not is_valid_index(index, count)
    ]
    if not count:
        no_sources = Gap(
            "no_sources",
            "No sources were supplied, so the text cannot be grounded in evidence",
            "Supply source documents about the topic and run the reflection again",
        )
        return [no_sources, *invalid]
    if not corpus.relevant_docs:
        no_relevant = Gap(
            "no_relevant_sources",
            "No supplied source has a sentence about the topic, so the text cannot be "
            "grounded in evidence",
            "Supply source documents about the topic or rephrase the topic",
        )
        return [no_relevant, *invalid]
    _, claims = parse(text)
    drop_invalid_citations(claims, count)
    return [
        *_term_gaps(corpus, claims),
        *_uncited_gaps(corpus, claims),
        *_redundancy_gaps(claims),
        *_uncited_source_gaps(corpus, claims),
        *invalid,
        *_length_gaps(claims),
    ]


def _term_gaps(corpus: Corpus, claims: Sequence[Claim]) -> Iterator[Gap]:
    covered = frozenset[str]().union(*(c.terms for c in claims))
    for term in corpus.topic_terms:
        if term.stem in covered:
            continue
        options = corpus.mentioning(term.stem)
        if not options:
            yield Gap(
                "unsupported_term",
                f'Topic term "{term.surface}" is not covered, and no sentence of the '
                "supplied sources mentions it",
                f'Add a source about "{term.surface}" or narrow the topic',
            )
        else:
            yield Gap(
                "missing_term",
                f'Topic term "{term.surface}" is not covered',
                f'Add evidence about "{term.surface}" from [{options[0].doc}]',
            )


def _uncited_gaps(corpus: Corpus, claims: Sequence[Claim]) -> Iterator[Gap]:
    for number, claim in enumerate(claims, start=1):
        if claim.citations:
            continue
        match = corpus.best_match(claim.terms)
        suggestion = (
            f"Cite its source {corpus.describe(match.doc)}"
            if match
            else "Support it with a cited source sentence or remove it"
        )
        issue = f'Sentence {number} has no citation: "{shorten(claim.body)}"'
        yield Gap("uncited", issue, suggestion)


def _redundancy_gaps(claims: Sequence[Claim]) -> Iterator[Gap]:
    for first in range(len(claims)):
        for second in range(first + 1, len(claims)):
            similarity = jaccard(claims[first].terms, claims[second].terms)
            if similarity >= REDUNDANCY_THRESHOLD:
                yield Gap(
                    "redundant",
                    f"Sentences {first + 1} and {second + 1} repeat each other "
                    f"(similarity {similarity:.2f})",
                    f"Remove sentence {second + 1} or merge it into sentence {first + 1}",
                )


def _uncited_source_gaps(corpus: Corpus, claims: Sequence[Claim]) -> Iterator[Gap]:
    cited = {index for claim in claims for index in claim.citations}
    for doc in range(1, len(corpus.documents) + 1):
        term = corpus.shared_topic_term(doc)
        if doc not in cited and term is not None:
            yield Gap(
                "uncited_source",
                f"Relevant source {corpus.describe(doc)} is never cited",
                f'Add evidence about "{term.surface}" from [{doc}]',
            )


def _length_gaps(claims: Sequence[Claim]) -> Iterator[Gap]:
    cited = sum(1 for claim in claims if claim.citations)
    if cited < MIN_CITED_SENTENCES:
        yield Gap(
            "too_short",
            f"Only {cited} sentence(s) cite a source; at least {MIN_CITED_SENTENCES} are expected",
            "Add cited sentences from the supplied sources",
        )
