"""The supplied documents indexed for one topic: quotable sentences, term weights, MMR picks;
the corpora of the last topics, each built once and read from worker threads."""

import asyncio
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TypeVar

from ..provider import Documents
from ..text_analysis import Term, content_terms, extract_topic_terms, idf, jaccard, word_count
from ..types import Critique
from . import tuning
from .claims import Candidate, quotable_sentences


T = TypeVar("T")


class Corpus:
    """The supplied documents prepared for one topic: candidate sentences and term weights."""

    def __init__(self, topic: str, documents: Documents) -> None:
        self.topic = topic
        self.documents = tuple(documents)
        self._words = word_count(topic, *(f"{d.title} {d.text}" for d in self.documents))
        self.topic_terms = extract_topic_terms(topic)
        self.doc_terms = tuple(content_terms(f"{d.title}\n{d.text}") for d in self.documents)
        self.weights = {t.stem: idf(t.stem, self.doc_terms) for t in self.topic_terms}
        self.total_weight = sum(self.weights[t.stem] for t in self.topic_terms)
        self.candidates = tuple(
            candidate
            for doc, document in enumerate(self.documents, start=1)
            for candidate in quotable_sentences(doc, document)
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

    def words_read(self, text: str = "", critique: Critique | None = None) -> int:
        """What a call reads, in whitespace-separated words (its usage's prompt): the topic,
        the documents, `text` and the issues and suggestions of `critique`."""
        notes = (*critique.issues, *critique.suggestions) if critique is not None else ()
        return self._words + word_count(text, *notes)

    def coverage(self, terms: frozenset[str]) -> float:
        """Share of the topic's idf weight that `terms` cover, 0..1."""
        if not self.total_weight:
            return 0.0
        covered = sum(self.weights[t.stem] for t in self.topic_terms if t.stem in terms)
        return covered / self.total_weight

    def _relevance_of(self, candidate: Candidate) -> float:
        """Topic coverage plus a small bonus for documents ranked first."""
        count = len(self.documents)
        coverage = self.coverage(candidate.terms)
        first_word = candidate.text.split(maxsplit=1)[0].lower()
        if candidate.position > 0 and first_word in tuning.ANAPHORA:
            coverage *= tuning.ANAPHORA_FACTOR
        return coverage + tuning.RANK_BONUS * (count - candidate.doc + 1) / count

    def mentioning(self, stem: str) -> list[Candidate]:
        """The source sentences containing `stem`, most relevant first."""
        return sorted((c for c in self.candidates if stem in c.terms), key=self._rank, reverse=True)

    def best_of_document(self, doc: int) -> list[Candidate]:
        """The sentences of document `doc`, most relevant first."""
        return sorted((c for c in self.candidates if c.doc == doc), key=self._rank, reverse=True)

    def best_match(self, terms: frozenset[str]) -> Candidate | None:
        """The source sentence that most plausibly supports a sentence with `terms`."""
        matches = [
            c
            for c in self.candidates
            if jaccard(terms, c.terms) >= tuning.MATCH_THRESHOLD
            and len(terms & c.terms) >= tuning.MATCH_MIN_SHARED
        ]
        return max(
            matches, key=lambda c: (jaccard(terms, c.terms), -c.doc, -c.position), default=None
        )

    def shared_topic_term(self, doc: int) -> Term | None:
        """The first topic term that a quotable sentence of document `doc` mentions."""
        terms = self.quotable_terms[doc - 1]
        return next((t for t in self.topic_terms if t.stem in terms), None)

    def describe(self, doc: int) -> str:
        """Document `doc` as `[n] "title"` (just `[n]` without a title)."""
        title = self.documents[doc - 1].title.strip()
        return f'[{doc}] "{title}"' if title else f"[{doc}]"

    def select(
        self, existing: Sequence[frozenset[str]], limit: int, minimum: int
    ) -> list[Candidate]:
        """Pick up to `limit` sentences, MMR style: relevant, new to the topic, not redundant.

        Only sentences of relevant documents qualify. Stops early, once `minimum` are picked,
        when only sentences without a topic term are left.
        """
        chosen: list[Candidate] = []
        covered: frozenset[str] = frozenset[str]().union(*existing)
        while len(chosen) < limit:
            best: Candidate | None = None
            best_key = (0.0, 0, 0)
            taken = [*existing, *(c.terms for c in chosen)]
            for candidate in self.candidates:
                if candidate.doc not in self.relevant_docs or candidate in chosen:
                    continue
                redundancy = max((jaccard(candidate.terms, t) for t in taken), default=0.0)
                if redundancy >= tuning.SELECTION_SIMILARITY_LIMIT:
                    continue
                gain = self._gain(candidate, covered)
                score = tuning.MMR_LAMBDA * (self._relevance[candidate] + gain)
                score -= (1 - tuning.MMR_LAMBDA) * redundancy
                key = (score, -candidate.doc, -candidate.position)
                if best is None or key > best_key:
                    best, best_key = candidate, key
            if best is None or (len(chosen) >= minimum and not self.coverage(best.terms)):
                break
            chosen.append(best)
            covered |= best.terms
        return chosen

    def _gain(self, candidate: Candidate, covered: frozenset[str]) -> float:
        """Share of the topic's weight that `candidate` would newly cover."""
        if not self.total_weight:
            return 0.0
        hits = self._topic_hits[candidate]
        return sum(self.weights[s] for s in hits if s not in covered) / self.total_weight

    def _rank(self, candidate: Candidate) -> tuple[float, int, int]:
        return (self._relevance[candidate], -candidate.doc, -candidate.position)


class Corpora:
    """The corpora of the last few topics and documents: the calls of one reflection share
    theirs, built once; each job on one runs in a worker thread."""

    def __init__(self) -> None:
        self.get = lru_cache(maxsize=tuning.CORPORA_KEPT)(Corpus)  # (topic, tuple of documents)

    async def run(self, job: Callable[[Corpus], T], topic: str, documents: Documents) -> T:
        """`job` on the corpus of `topic` and `documents`, in a worker thread."""
        return await asyncio.to_thread(lambda: job(self.get(topic, tuple(documents))))
