"""The fixers: each gap a critique names is mended from the supplied documents."""

from collections.abc import Sequence

from ..citations import is_valid_index, strip_invalid_citations
from ..provider import Drafted
from ..text_analysis import jaccard, word_count
from ..types import Critique, TokenUsage
from .claims import Claim, drop_invalid_citations, parse, render
from .corpus import Corpus
from .critique import find_gaps, score
from .tuning import MIN_CITED_SENTENCES, REDUNDANCY_THRESHOLD, SELECTION_SIMILARITY_LIMIT


def fix(corpus: Corpus, text: str, critique: Critique) -> Drafted:
    """Fix the gaps of `text` that `critique` names (all detected gaps if it names none of
    them); never returns a text that scores lower than `text`."""
    refined = _fixed(corpus, text, critique)
    return Drafted(refined, TokenUsage(corpus.words_read(text, critique), word_count(refined)))


def _fixed(corpus: Corpus, text: str, critique: Critique) -> str:
    gaps = find_gaps(corpus, text)
    named = {gap.kind for gap in gaps if gap.issue in critique.issues}
    if not named and critique.issues:
        named = {gap.kind for gap in gaps}
    if not named:
        return text
    if not corpus.relevant_docs:
        if "invalid" in named:
            return strip_invalid_citations(text, len(corpus.documents))[0]
        return text
    heading, claims = parse(text)
    if "invalid" in named:
        drop_invalid_citations(claims, len(corpus.documents))
    if "redundant" in named:
        claims = _merge_redundant(claims)
    if "uncited" in named:
        claims = _attribute_uncited(corpus, claims)
    if "missing_term" in named:
        _add_missing_terms(corpus, claims)
    if "uncited_source" in named:
        _cite_uncited_sources(corpus, claims)
    if "too_short" in named:
        _lengthen(corpus, claims)
    refined = render(heading, claims)
    return refined if score(find_gaps(corpus, refined)) >= score(gaps) else text


def _merge_redundant(claims: Sequence[Claim]) -> list[Claim]:
    kept: list[Claim] = []
    for claim in claims:
        twin = next(
            (k for k in kept if jaccard(k.terms, claim.terms) >= REDUNDANCY_THRESHOLD), None
        )
        if twin is None:
            kept.append(claim)
            continue
        for index in claim.citations:
            twin.cite(index)
    return kept


def _attribute_uncited(corpus: Corpus, claims: Sequence[Claim]) -> list[Claim]:
    count = len(corpus.documents)
    kept: list[Claim] = []
    for claim in claims:
        if any(is_valid_index(i, count) for i in claim.citations):
            kept.append(claim)
            continue
        match = corpus.best_match(claim.terms)
        if match is not None:
            claim.cite(match.doc)
            kept.append(claim)
    return kept


def _most_similar(claims: Sequence[Claim], terms: frozenset[str]) -> tuple[float, int]:
    scores = [jaccard(claim.terms, terms) for claim in claims]
    best = max(range(len(scores)), key=scores.__getitem__, default=-1)
    return (scores[best], best) if best >= 0 else (0.0, -1)


def _insert(claims: list[Claim], claim: Claim) -> None:
    """Insert after the last claim citing the same document first, else at the end."""
    source = claim.citations[0]
    positions = [i for i, c in enumerate(claims) if c.citations and c.citations[0] == source]
    claims.insert(positions[-1] + 1 if positions else len(claims), claim)


def _add_missing_terms(corpus: Corpus, claims: list[Claim]) -> None:
    for term in corpus.topic_terms:
        if any(term.stem in claim.terms for claim in claims):
            continue
        options = corpus.mentioning(term.stem)
        for option in options:
            if _most_similar(claims, option.terms)[0] < SELECTION_SIMILARITY_LIMIT:
                _insert(claims, Claim.quote(option))
                break


def _cite_uncited_sources(corpus: Corpus, claims: list[Claim]) -> None:
    for doc in range(1, len(corpus.documents) + 1):
        cited = any(doc in claim.citations for claim in claims)
        options = corpus.best_of_document(doc)
        if cited or corpus.shared_topic_term(doc) is None or not options:
            continue
        best = options[0]
        similarity, position = _most_similar(claims, best.terms)
        if similarity >= SELECTION_SIMILARITY_LIMIT:
            claims[position].cite(doc)
        else:
            _insert(claims, Claim.quote(best))


def _lengthen(corpus: Corpus, claims: list[Claim]) -> None:
    missing = MIN_CITED_SENTENCES - sum(1 for claim in claims if claim.citations)
    if missing <= 0:
        return
    existing = [claim.terms for claim in claims]
    for candidate in corpus.select(existing, missing, missing):
        _insert(claims, Claim.quote(candidate))
