"""Passages: a document's sections cut along paragraphs (then sentences, then words) into spans
the embedding model reads whole (all-MiniLM-L6-v2 reads 256 word pieces: about 170 English
words with the title and heading in front). A passage starts with the last sentences or short
paragraphs of the one before when they hold at most 40 words (a small overlap; a long final
paragraph is not repeated). Passages never cross a section (a heading or a PDF page)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ponder_research.documents import Passage
from ponder_research.library.formats import ExtractedDocument, Section


MAX_WORDS = 170
OVERLAP_WORDS = 40
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+")
_LINE_BREAK = re.compile(r"\n")
_WORD = re.compile(r"\S+")


def _spans(
    text: str, start: int, end: int, separator: re.Pattern[str]
) -> Iterator[tuple[int, int]]:
    """The non-blank pieces of text[start:end] between matches of `separator`, trimmed."""
    position = start
    for match in separator.finditer(text, start, end):
        yield from _trimmed(text, position, match.start())
        position = match.end()
    yield from _trimmed(text, position, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def _words(text: str, start: int, end: int) -> int:
    return len(_WORD.findall(text, start, end))


def _units(text: str, section: Section) -> list[tuple[int, int, int]]:
    """(start, end, words) pieces of a section no longer than MAX_WORDS: paragraphs, or the
    sentences (lines, word runs) of a paragraph that is too long."""
    units: list[tuple[int, int, int]] = []
    for start, end in _spans(text, section.start, section.end, _PARAGRAPH_BREAK):
        units.extend(_fit(text, start, end, (_SENTENCE_END, _LINE_BREAK)))
    return units


def _fit(
    text: str, start: int, end: int, separators: tuple[re.Pattern[str], ...]
) -> Iterator[tuple[int, int, int]]:
    words = _words(text, start, end)
    if words <= MAX_WORDS:
        yield start, end, words
        return
    if separators:
        pieces = list(_spans(text, start, end, separators[0]))
        if len(pieces) > 1:
            for piece_start, piece_end in pieces:
                yield from _fit(text, piece_start, piece_end, separators[1:])
            return
        yield from _fit(text, start, end, separators[1:])
        return
    matches = list(_WORD.finditer(text, start, end))
    for first in range(0, len(matches), MAX_WORDS):
        run = matches[first : first + MAX_WORDS]
        yield run[0].start(), run[-1].end(), len(run)


def _pack(units: list[tuple[int, int, int]]) -> Iterator[tuple[int, int]]:
    """Consecutive units joined up to MAX_WORDS; each span after the first starts with the
    last units of the one before (up to OVERLAP_WORDS), unless those would fill it alone."""
    first = 0
    while first < len(units):
        last, words = first, units[first][2]
        while last + 1 < len(units) and words + units[last + 1][2] <= MAX_WORDS:
            last += 1
            words += units[last][2]
        yield units[first][0], units[last][1]
        if last + 1 >= len(units):
            return
        # Step back over the tail units that fit in the overlap, keeping progress.
        following, overlap = last + 1, 0
        while (
            following - 1 > first
            and overlap + units[following - 1][2] <= OVERLAP_WORDS
            and overlap + units[following - 1][2] + units[last + 1][2] <= MAX_WORDS
        ):
            following -= 1
            overlap += units[following][2]
        first = following


def split_passages(document: ExtractedDocument, document_id: str) -> list[Passage]:
    """The passages of `document`, in order; `document.text[p.start:p.end] == p.text`."""
    passages: list[Passage] = []
    for section in document.sections:
        for start, end in _pack(_units(document.text, section)):
            passages.append(
                Passage(
                    document_id=document_id,
                    index=len(passages),
                    text=document.text[start:end],
                    start=start,
                    end=end,
                    heading=section.heading,
                    page=section.page,
                )
            )
    return passages


def embedding_text(title: str, passage: Passage) -> str:
    """What is embedded for a passage: the document's title and the passage's heading give it
    context (a deep section rarely repeats what the document is about)."""
    heading = passage.heading
    context = (
        heading
        if title and heading.startswith(title)
        else " > ".join(part for part in (title, heading) if part)
    )
    if passage.page:
        context = f"{context} (page {passage.page})" if context else f"page {passage.page}"
    return f"{context}\n{passage.text}" if context else passage.text
