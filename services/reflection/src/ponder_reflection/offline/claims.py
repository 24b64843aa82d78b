"""Sentences as claims: quoted source sentences, parsed text sentences, and texts rendered back."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Self

from ..citations import cited_indices, format_marker, is_valid_index, strip_markers
from ..text_analysis import content_terms, is_heading, split_blocks, split_sentences
from ..types import SourceDocument
from .tuning import MAX_SENTENCE_WORDS, MIN_SENTENCE_WORDS, SNIPPET_CHARS


_TERMINAL_RE = re.compile(r"[.!?]$")
_CLOSED_TERMINAL_RE = re.compile(r"[.!?][\"')\u2019\u201d]+$")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sentence of a supplied document that a text may quote and cite."""

    doc: int
    position: int
    text: str
    terms: frozenset[str]


def quotable_sentences(doc: int, document: SourceDocument) -> list[Candidate]:
    """The quotable sentences of document number `doc`."""
    return [
        Candidate(doc, position, sentence, terms)
        for position, sentence in enumerate(split_sentences(strip_markers(document.text)))
        if (terms := content_terms(sentence))
        and not is_heading(sentence)
        and MIN_SENTENCE_WORDS <= len(sentence.split()) <= MAX_SENTENCE_WORDS
    ]


@dataclass(slots=True)
class Claim:
    """A sentence of a text under work: its words, citations and terminal punctuation."""

    body: str
    end: str
    citations: tuple[int, ...]
    terms: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, sentence: str) -> Self:
        """The claim of one sentence of a text."""
        body = strip_markers(sentence).strip()
        end = "."
        if _TERMINAL_RE.search(body):
            body, end = body[:-1].rstrip(), body[-1]
        elif _CLOSED_TERMINAL_RE.search(body):
            end = ""
        return cls(body, end, cited_indices(sentence), content_terms(body))

    @classmethod
    def quote(cls, candidate: Candidate) -> Self:
        """A source sentence as a claim that cites its document."""
        claim = cls.parse(candidate.text)
        claim.body = claim.body[:1].upper() + claim.body[1:]
        claim.citations = (candidate.doc,)
        return claim

    def cite(self, index: int) -> None:
        """Add a citation of document `index` unless the claim cites it already."""
        if index not in self.citations:
            self.citations = (*self.citations, index)

    def render(self) -> str:
        """The sentence with its `[n]` markers before the terminal punctuation."""
        if self.citations:
            return f"{self.body} {format_marker(self.citations)}{self.end}"
        return f"{self.body}{self.end}"


def parse(text: str) -> tuple[str | None, list[Claim]]:
    """The heading (first block, if it is one) and the claims of a text."""
    blocks = split_blocks(text)
    heading = blocks[0] if blocks and is_heading(blocks[0]) else None
    claims = [
        Claim.parse(sentence)
        for block in blocks
        if not is_heading(block)
        for sentence in split_sentences(block)
    ]
    return heading, claims


def render(heading: str | None, claims: Iterable[Claim]) -> str:
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


def shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    """`text`, cut to at most `limit` characters with an ellipsis, for quoting."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def drop_invalid_citations(claims: Iterable[Claim], count: int) -> None:
    """Remove from each claim the citations that point outside documents 1..`count`."""
    for claim in claims:
        claim.citations = tuple(i for i in claim.citations if is_valid_index(i, count))
