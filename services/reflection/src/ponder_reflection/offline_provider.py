"""Offline provider: extractive drafts, measurable critiques and gap-fixing refinements."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .citations import (
    cited_indices,
    format_marker,
    invalid_citation_warning,
    is_valid_index,
    strip_invalid_citations,
    strip_markers,
)
from .provider import Critiqued, DeltaSink, Drafted
from .text_analysis import (
    Term,
    content_terms,
    extract_topic_terms,
    idf,
    is_heading,
    jaccard,
    split_blocks,
    split_sentences,
    word_count,
)
from .types import Critique, SourceDocument, TokenUsage


MAX_DRAFT_SENTENCES = 5
MIN_DRAFT_SENTENCES = 3
MIN_CITED_SENTENCES = 2
# Critique: two sentences at least this similar (Jaccard of content terms) repeat each other.
REDUNDANCY_THRESHOLD = 0.6
# Selection keeps a margin below the critique's threshold.
_SELECTION_SIMILARITY_LIMIT = 0.5
# An uncited sentence is attributed to the most similar source sentence at least this similar
# that shares at least _MATCH_MIN_SHARED terms.
_MATCH_THRESHOLD = 0.3
_MATCH_MIN_SHARED = 2
_RANK_BONUS = 0.1
_MMR_LAMBDA = 0.7
_MIN_SENTENCE_WORDS = 3
_MAX_SENTENCE_WORDS = 120
_HEADING_TOPIC_CHARS = 200
_SNIPPET_CHARS = 60
_LISTED_TERMS = 5
# A sentence that opens with one of these leans on a sentence before it, so it reads worse
# out of context; its topic coverage counts for less.
_ANAPHORA = frozenset({"it", "its", "they", "their", "them", "this", "these", "those", "such"})
_ANAPHORA_FACTOR = 0.6

PENALTY_NO_SOURCES = 8.0
PENALTY_NO_RELEVANT_SOURCES = 8.0
PENALTY_MISSING_TERM = 1.0
PENALTY_UNSUPPORTED_TERM = 0.5
PENALTY_UNCITED_SENTENCE = 1.0
PENALTY_REDUNDANT_PAIR = 1.0
PENALTY_UNCITED_SOURCE = 0.5
PENALTY_INVALID_CITATION = 1.5
PENALTY_TOO_SHORT = 2.0

_TERMINAL_RE = re.compile(r"[.!?]$")
_CLOSED_TERMINAL_RE = re.compile(r"[.!?][\"')\u2019\u201d]+$")


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A sentence of a supplied document that a text may quote and cite."""

    doc: int
    position: int
    text: str
    terms: frozenset[str]


@dataclass(slots=True)
class _Claim:
    """A sentence of a text under work: its words, citations and terminal punctuation."""

    body: str
    end: str
    citations: tuple[int, ...]
    terms: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, sentence: str) -> _Claim:
        body = strip_markers(sentence).strip()
        end = "."
        if _TERMINAL_RE.search(body):
            body, end = body[:-1].rstrip(), body[-1]
        elif _CLOSED_TERMINAL_RE.search(body):
            end = ""
        return cls(body, end, cited_indices(sentence), content_terms(body))

    @classmethod
    def quote(cls, candidate: _Candidate) -> _Claim:
        claim = cls.parse(candidate.text)
        claim.body = claim.body[:1].upper() + claim.body[1:]
        claim.citations = (candidate.doc,)
        return claim

    def cite(self, index: int) -> None:
        if index not in self.citations:
            self.citations = (*self.citations, index)

    def render(self) -> str:
        if self.citations:
            return f"{self.body} {format_marker(self.citations)}{self.end}"
        return f"{self.body}{self.end}"


@dataclass(frozen=True, slots=True)
class _Gap:
    """One measurable shortcoming of a text; `kind` tells refine how to fix it."""

    kind: str
    issue: str
    suggestion: str
    penalty: float


class _Corpus:
    """The supplied documents prepared for one topic: candidate sentences and term weights."""

    def __init__(self, topic: str, documents: Sequence[SourceDocument]) -> None:
        self.topic = topic
        self.documents = tuple(documents)
        self.topic_terms = extract_topic_terms(topic)
        self.doc_terms = tuple(content_terms(f"{d.title}\n{d.text}") for d in self.documents)
        self.weights = {t.stem: idf(t.stem, self.doc_terms) for t in self.topic_terms}
        self.total_weight = sum(self.weights[t.stem] for t in self.topic_terms)
        self.candidates = tuple(
            candidate
            for doc, document in enumerate(self.documents, start=1)
            for candidate in _candidates(doc, document)
        )
        self._relevance = {c: self._relevance_of(c) for c in self.candidates}
        self._topic_hits = {
            c: tuple(t.stem for t in self.topic_terms if t.stem in c.terms) for c in self.candidates
        }
        self.quotable_terms = tuple(
            frozenset[str]().union(*(c.terms for c in self.candidates if c.doc == doc))
            for doc in range(1, len(self.documents) + 1)
        )
        # Documents with a quotable sentence that shares a topic term (any quotable sentence
        # when the topic has no terms): the ones a text can and should cite.
        self.relevant_docs = frozenset(
            doc
            for doc in range(1, len(self.documents) + 1)
            if self.quotable_terms[doc - 1]
            and (not self.topic_terms or self.shared_topic_term(doc) is not None)
        )

    def coverage(self, terms: frozenset[str]) -> float:
        """Share of the topic's idf weight that `terms` cover, 0..1."""
        if not self.total_weight:
            return 0.0
        covered = sum(self.weights[t.stem] for t in self.topic_terms if t.stem in terms)
        return covered / self.total_weight

    def relevance(self, candidate: _Candidate) -> float:
        """Topic coverage plus a small bonus for documents ranked first."""
        return self._relevance[candidate]

    def _relevance_of(self, candidate: _Candidate) -> float:
        count = len(self.documents)
        coverage = self.coverage(candidate.terms)
        first_word = candidate.text.split(maxsplit=1)[0].lower()
        if candidate.position > 0 and first_word in _ANAPHORA:
            coverage *= _ANAPHORA_FACTOR
        return coverage + _RANK_BONUS * (count - candidate.doc + 1) / count

    def best_for_term(self, stem: str) -> _Candidate | None:
        """The most relevant source sentence containing `stem`."""
        matches = [c for c in self.candidates if stem in c.terms]
        return max(matches, key=self._rank_key, default=None)

    def best_of_document(self, doc: int) -> list[_Candidate]:
        """The sentences of document `doc`, most relevant first."""
        return sorted((c for c in self.candidates if c.doc == doc), key=self._rank_key)[::-1]

    def best_match(self, terms: frozenset[str]) -> _Candidate | None:
        """The source sentence that most plausibly supports a sentence with `terms`."""
        best: _Candidate | None = None
        best_key = (0.0, 0, 0)
        for candidate in self.candidates:
            score = jaccard(terms, candidate.terms)
            if score < _MATCH_THRESHOLD or len(terms & candidate.terms) < _MATCH_MIN_SHARED:
                continue
            key = (score, -candidate.doc, -candidate.position)
            if best is None or key > best_key:
                best, best_key = candidate, key
        return best

    def shared_topic_term(self, doc: int) -> Term | None:
        """The first topic term that a quotable sentence of document `doc` mentions."""
        terms = self.quotable_terms[doc - 1]
        return next((t for t in self.topic_terms if t.stem in terms), None)

    def describe(self, doc: int) -> str:
        title = self.documents[doc - 1].title.strip()
        return f'[{doc}] "{title}"' if title else f"[{doc}]"

    def select(
        self, existing: Sequence[frozenset[str]], limit: int, minimum: int
    ) -> list[_Candidate]:
        """Pick up to `limit` sentences, MMR style: relevant, new to the topic, not redundant.

        Only sentences of relevant documents qualify. Stops early, once `minimum` are picked,
        when only sentences without a topic term are left.
        """
        chosen: list[_Candidate] = []
        covered: frozenset[str] = frozenset[str]().union(*existing)
        while len(chosen) < limit:
            best: _Candidate | None = None
            best_key = (0.0, 0, 0)
            taken = [*existing, *(c.terms for c in chosen)]
            for candidate in self.candidates:
                if candidate.doc not in self.relevant_docs or candidate in chosen:
                    continue
                redundancy = max((jaccard(candidate.terms, t) for t in taken), default=0.0)
                if redundancy >= _SELECTION_SIMILARITY_LIMIT:
                    continue
                gain = self._gain(candidate, covered)
                score = _MMR_LAMBDA * (self.relevance(candidate) + gain)
                score -= (1 - _MMR_LAMBDA) * redundancy
                key = (score, -candidate.doc, -candidate.position)
                if best is None or key > best_key:
                    best, best_key = candidate, key
            if best is None or (len(chosen) >= minimum and not self.coverage(best.terms)):
                break
            chosen.append(best)
            covered |= best.terms
        return chosen

    def _gain(self, candidate: _Candidate, covered: frozenset[str]) -> float:
        """Share of the topic's weight that `candidate` would newly cover."""
        if not self.total_weight:
            return 0.0
        hits = self._topic_hits[candidate]
        return sum(self.weights[s] for s in hits if s not in covered) / self.total_weight

    def _rank_key(self, candidate: _Candidate) -> tuple[float, int, int]:
        return (self.relevance(candidate), -candidate.doc, -candidate.position)


def _candidates(doc: int, document: SourceDocument) -> list[_Candidate]:
    found: list[_Candidate] = []
    for position, sentence in enumerate(split_sentences(strip_markers(document.text))):
        words = len(sentence.split())
        terms = content_terms(sentence)
        if is_heading(sentence) or not terms:
            continue
        if _MIN_SENTENCE_WORDS <= words <= _MAX_SENTENCE_WORDS:
            found.append(_Candidate(doc, position, sentence, terms))
    return found


def _subject(topic: str) -> str:
    """The topic on one line, shortened for quoting in a text."""
    subject = " ".join(topic.split())
    if len(subject) > _HEADING_TOPIC_CHARS:
        subject = subject[: _HEADING_TOPIC_CHARS - 1].rstrip() + "\u2026"
    return subject


def _heading(topic: str) -> str:
    return f'Key points on "{_subject(topic)}" from the supplied sources:'


def _parse(text: str) -> tuple[str | None, list[_Claim]]:
    """The heading (first block, if it is one) and the claims of a text."""
    blocks = split_blocks(text)
    heading = blocks[0] if blocks and is_heading(blocks[0]) else None
    claims = [
        _Claim.parse(sentence)
        for block in blocks
        if not is_heading(block)
        for sentence in split_sentences(block)
    ]
    return heading, claims


def _render(heading: str | None, claims: Iterable[_Claim]) -> str:
    """The heading, then the claims; a new paragraph starts where the first source changes."""
    paragraphs: list[list[str]] = []
    previous: int | None = None
    for claim in claims:
        source = claim.citations[0] if claim.citations else previous
        if not paragraphs or source != previous:
            paragraphs.append([])
        paragraphs[-1].append(claim.render())
        previous = source
    parts = [heading] if heading else []
    parts.extend(" ".join(paragraph) for paragraph in paragraphs)
    return "\n\n".join(parts)


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1].rstrip() + "\u2026"


def _no_sources_text(topic: str) -> str:
    return (
        f'No sources were supplied for "{_subject(topic)}", so no findings can be reported and '
        "none have been made up. Supply source documents to get a cited summary."
    )


def _no_relevant_sources_text(corpus: _Corpus) -> str:
    count = len(corpus.documents)
    shown = corpus.topic_terms[:_LISTED_TERMS]
    terms = " or ".join(f'"{term.surface}"' for term in shown)
    if len(corpus.topic_terms) > len(shown):
        terms += " or the other topic terms"
    about = f"about {terms}" if terms else "that can be quoted"
    sources = (
        "The supplied source has no sentence"
        if count == 1
        else f"None of the {count} supplied sources has a sentence"
    )
    return (
        f'{sources} {about}, so no findings about "{_subject(corpus.topic)}" can be reported '
        "and none have been made up."
    )


def _draft(corpus: _Corpus) -> str:
    if not corpus.documents:
        return _no_sources_text(corpus.topic)
    if not corpus.relevant_docs:
        return _no_relevant_sources_text(corpus)
    chosen = corpus.select([], MAX_DRAFT_SENTENCES, MIN_DRAFT_SENTENCES)
    order = list(dict.fromkeys(c.doc for c in chosen))
    grouped = sorted(chosen, key=lambda c: (order.index(c.doc), c.position))
    return _render(_heading(corpus.topic), [_Claim.quote(c) for c in grouped])


def _gaps(corpus: _Corpus, text: str) -> list[_Gap]:
    """Every measurable gap of `text`, in a stable order."""
    count = len(corpus.documents)
    invalid = [i for i in cited_indices(text) if not is_valid_index(i, count)]
    invalid_gaps = [
        _Gap(
            "invalid",
            invalid_citation_warning(index, count),
            f"Remove [{index}]" + (f" or cite one of [1] to [{count}]" if count else ""),
            PENALTY_INVALID_CITATION,
        )
        for index in invalid
    ]
    if not count:
        no_sources = _Gap(
            "no_sources",
            "No sources were supplied, so the text cannot be grounded in evidence",
            "Supply source documents about the topic and run the reflection again",
            PENALTY_NO_SOURCES,
        )
        return [no_sources, *invalid_gaps]
    if not corpus.relevant_docs:
        no_relevant = _Gap(
            "no_relevant_sources",
            "No supplied source has a sentence about the topic, so the text cannot be "
            "grounded in evidence",
            "Supply source documents about the topic or rephrase the topic",
            PENALTY_NO_RELEVANT_SOURCES,
        )
        return [no_relevant, *invalid_gaps]
    _, claims = _parse(text)
    for claim in claims:
        claim.citations = tuple(i for i in claim.citations if is_valid_index(i, count))
    return [
        *_term_gaps(corpus, claims),
        *_uncited_gaps(corpus, claims),
        *_redundancy_gaps(claims),
        *_uncited_source_gaps(corpus, claims),
        *invalid_gaps,
        *_length_gaps(claims),
    ]


def _term_gaps(corpus: _Corpus, claims: Sequence[_Claim]) -> list[_Gap]:
    covered = frozenset[str]().union(*(c.terms for c in claims))
    gaps: list[_Gap] = []
    for term in corpus.topic_terms:
        if term.stem in covered:
            continue
        best = corpus.best_for_term(term.stem)
        if best is None:
            gaps.append(
                _Gap(
                    "unsupported_term",
                    f'Topic term "{term.surface}" is not covered, and no sentence of the '
                    "supplied sources mentions it",
                    f'Add a source about "{term.surface}" or narrow the topic',
                    PENALTY_UNSUPPORTED_TERM,
                )
            )
        else:
            gaps.append(
                _Gap(
                    "missing_term",
                    f'Topic term "{term.surface}" is not covered',
                    f'Add evidence about "{term.surface}" from [{best.doc}]',
                    PENALTY_MISSING_TERM,
                )
            )
    return gaps


def _uncited_gaps(corpus: _Corpus, claims: Sequence[_Claim]) -> list[_Gap]:
    gaps: list[_Gap] = []
    for number, claim in enumerate(claims, start=1):
        if claim.citations:
            continue
        match = corpus.best_match(claim.terms)
        suggestion = (
            f"Cite its source {corpus.describe(match.doc)}"
            if match
            else "Support it with a cited source sentence or remove it"
        )
        issue = f'Sentence {number} has no citation: "{_snippet(claim.body)}"'
        gaps.append(_Gap("uncited", issue, suggestion, PENALTY_UNCITED_SENTENCE))
    return gaps


def _redundancy_gaps(claims: Sequence[_Claim]) -> list[_Gap]:
    gaps: list[_Gap] = []
    for first in range(len(claims)):
        for second in range(first + 1, len(claims)):
            score = jaccard(claims[first].terms, claims[second].terms)
            if score >= REDUNDANCY_THRESHOLD:
                gaps.append(
                    _Gap(
                        "redundant",
                        f"Sentences {first + 1} and {second + 1} repeat each other "
                        f"(similarity {score:.2f})",
                        f"Remove sentence {second + 1} or merge it into sentence {first + 1}",
                        PENALTY_REDUNDANT_PAIR,
                    )
                )
    return gaps


def _uncited_source_gaps(corpus: _Corpus, claims: Sequence[_Claim]) -> list[_Gap]:
    cited = {index for claim in claims for index in claim.citations}
    gaps: list[_Gap] = []
    for doc in range(1, len(corpus.documents) + 1):
        term = corpus.shared_topic_term(doc)
        if doc in cited or term is None:
            continue
        gaps.append(
            _Gap(
                "uncited_source",
                f"Relevant source {corpus.describe(doc)} is never cited",
                f'Add evidence about "{term.surface}" from [{doc}]',
                PENALTY_UNCITED_SOURCE,
            )
        )
    return gaps


def _length_gaps(claims: Sequence[_Claim]) -> list[_Gap]:
    cited = sum(1 for claim in claims if claim.citations)
    if cited >= MIN_CITED_SENTENCES:
        return []
    return [
        _Gap(
            "too_short",
            f"Only {cited} sentence(s) cite a source; at least {MIN_CITED_SENTENCES} are expected",
            "Add cited sentences from the supplied sources",
            PENALTY_TOO_SHORT,
        )
    ]


def _score(gaps: Iterable[_Gap]) -> float:
    return round(min(10.0, max(0.0, 10.0 - sum(gap.penalty for gap in gaps))), 1)


def _critique(corpus: _Corpus, text: str) -> Critique:
    gaps = _gaps(corpus, text)
    return Critique(
        score=_score(gaps),
        issues=tuple(gap.issue for gap in gaps),
        suggestions=tuple(gap.suggestion for gap in gaps),
    )


def _refine(corpus: _Corpus, text: str, critique: Critique) -> str:
    """Fix the gaps of `text` that `critique` names (all detected gaps if it names none of
    them); never returns a text that scores lower than `text`."""
    gaps = _gaps(corpus, text)
    named = {gap.kind for gap in gaps if gap.issue in critique.issues}
    if not named and critique.issues:
        named = {gap.kind for gap in gaps}
    if not named:
        return text
    if not corpus.relevant_docs:
        if "invalid" in named:
            return strip_invalid_citations(text, len(corpus.documents))[0]
        return text
    heading, claims = _parse(text)
    count = len(corpus.documents)
    if "invalid" in named:
        for claim in claims:
            claim.citations = tuple(i for i in claim.citations if is_valid_index(i, count))
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
    refined = _render(heading, claims)
    return refined if _score(_gaps(corpus, refined)) >= _score(gaps) else text


def _merge_redundant(claims: Sequence[_Claim]) -> list[_Claim]:
    kept: list[_Claim] = []
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


def _attribute_uncited(corpus: _Corpus, claims: Sequence[_Claim]) -> list[_Claim]:
    count = len(corpus.documents)
    kept: list[_Claim] = []
    for claim in claims:
        if any(is_valid_index(i, count) for i in claim.citations):
            kept.append(claim)
            continue
        match = corpus.best_match(claim.terms)
        if match is not None:
            claim.cite(match.doc)
            kept.append(claim)
    return kept


def _most_similar(claims: Sequence[_Claim], terms: frozenset[str]) -> tuple[float, int]:
    scores = [jaccard(claim.terms, terms) for claim in claims]
    best = max(range(len(scores)), key=scores.__getitem__, default=-1)
    return (scores[best], best) if best >= 0 else (0.0, -1)


def _insert(claims: list[_Claim], claim: _Claim) -> None:
    """Insert after the last claim citing the same document first, else at the end."""
    source = claim.citations[0]
    positions = [i for i, c in enumerate(claims) if c.citations and c.citations[0] == source]
    claims.insert(positions[-1] + 1 if positions else len(claims), claim)


def _add_missing_terms(corpus: _Corpus, claims: list[_Claim]) -> None:
    for term in corpus.topic_terms:
        if any(term.stem in claim.terms for claim in claims):
            continue
        options = sorted(
            (c for c in corpus.candidates if term.stem in c.terms),
            key=corpus.relevance,
            reverse=True,
        )
        for option in options:
            if _most_similar(claims, option.terms)[0] < _SELECTION_SIMILARITY_LIMIT:
                _insert(claims, _Claim.quote(option))
                break


def _cite_uncited_sources(corpus: _Corpus, claims: list[_Claim]) -> None:
    for doc in range(1, len(corpus.documents) + 1):
        cited = any(doc in claim.citations for claim in claims)
        options = corpus.best_of_document(doc)
        if cited or corpus.shared_topic_term(doc) is None or not options:
            continue
        best = options[0]
        similarity, position = _most_similar(claims, best.terms)
        if similarity >= _SELECTION_SIMILARITY_LIMIT:
            claims[position].cite(doc)
        else:
            _insert(claims, _Claim.quote(best))


def _lengthen(corpus: _Corpus, claims: list[_Claim]) -> None:
    missing = MIN_CITED_SENTENCES - sum(1 for claim in claims if claim.citations)
    if missing <= 0:
        return
    existing = [claim.terms for claim in claims]
    for candidate in corpus.select(existing, missing, missing):
        _insert(claims, _Claim.quote(candidate))


def _corpus_words(topic: str, documents: Sequence[SourceDocument]) -> int:
    return word_count(topic, *(f"{d.title} {d.text}" for d in documents))


class OfflineProvider:
    """Extractive, deterministic provider that calls no model: it quotes and cites the
    supplied documents, critiques measurable gaps and fixes them from the same documents.

    Usage counts whitespace-separated words: prompt = topic, documents and input text;
    completion = the text or critique written.
    """

    name = "offline"
    model = "extractive-v1"
    offline = True

    async def draft(
        self,
        topic: str,
        documents: Sequence[SourceDocument],
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """Quote the most relevant, non-redundant source sentences, each with its `[n]`
        (no token stream: the text is written at once, `on_delta` is not called)."""
        return await asyncio.to_thread(self.draft_sync, topic, tuple(documents))

    async def critique(
        self, topic: str, documents: Sequence[SourceDocument], text: str
    ) -> Critiqued:
        """Score `text` 0..10 by its measurable gaps, one issue and suggestion per gap."""
        return await asyncio.to_thread(self.critique_sync, topic, tuple(documents), text)

    async def refine(
        self,
        topic: str,
        documents: Sequence[SourceDocument],
        text: str,
        critique: Critique,
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """Fix the gaps `critique` names from the documents; never lowers the score."""
        return await asyncio.to_thread(self.refine_sync, topic, tuple(documents), text, critique)

    def draft_sync(self, topic: str, documents: Sequence[SourceDocument]) -> Drafted:
        """`draft` without the worker thread."""
        text = _draft(_Corpus(topic, documents))
        usage = TokenUsage(_corpus_words(topic, documents), word_count(text))
        return Drafted(text, usage)

    def critique_sync(
        self, topic: str, documents: Sequence[SourceDocument], text: str
    ) -> Critiqued:
        """`critique` without the worker thread."""
        critique = _critique(_Corpus(topic, documents), text)
        written = word_count(str(critique.score), *critique.issues, *critique.suggestions)
        usage = TokenUsage(_corpus_words(topic, documents) + word_count(text), written)
        return Critiqued(critique, usage)

    def refine_sync(
        self,
        topic: str,
        documents: Sequence[SourceDocument],
        text: str,
        critique: Critique,
    ) -> Drafted:
        """`refine` without the worker thread."""
        refined = _refine(_Corpus(topic, documents), text, critique)
        prompt = _corpus_words(topic, documents) + word_count(
            text, *critique.issues, *critique.suggestions
        )
        return Drafted(refined, TokenUsage(prompt, word_count(refined)))
