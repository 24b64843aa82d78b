"""Finding, validating and repairing `[n]` citation markers against a numbered source list."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .types import Citation, SourceDocument


# `[1]`, `[1, 3]`, `[1,3]`; adjacent markers such as `[2][4]` are separate matches. Six digits
# at most, so a marker is never a huge integer.
MARKER_RE = re.compile(r"\[(\d{1,6}(?:[ \t]*,[ \t]*\d{1,6})*)\]")
_CLOSING_PUNCTUATION = frozenset(".,;:!?)")


@dataclass(frozen=True, slots=True)
class Marker:
    """One bracketed marker: its span in the text and the numbers it lists, in order."""

    start: int
    end: int
    indices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CitationCheck:
    """Citations resolved against the documents, plus markers that point to no document."""

    citations: tuple[Citation, ...]
    invalid: tuple[int, ...]
    warnings: tuple[str, ...]


def find_markers(text: str) -> tuple[Marker, ...]:
    """Every citation marker in `text`, in order of appearance."""
    return tuple(
        Marker(m.start(), m.end(), tuple(int(part) for part in m.group(1).split(",")))
        for m in MARKER_RE.finditer(text)
    )


def cited_indices(text: str) -> tuple[int, ...]:
    """The numbers cited in `text`, unique, in order of first appearance."""
    seen: dict[int, None] = {}
    for marker in find_markers(text):
        for index in marker.indices:
            seen.setdefault(index, None)
    return tuple(seen)


def format_marker(indices: Iterable[int]) -> str:
    """Markers for `indices` in the style this package writes: `[1][3]`."""
    return "".join(f"[{index}]" for index in indices)


def is_valid_index(index: int, document_count: int) -> bool:
    """Whether `[index]` points to one of `document_count` documents (numbered from 1)."""
    return 1 <= index <= document_count


def invalid_citation_warning(index: int, document_count: int) -> str:
    """The warning text for a marker that points to no supplied document."""
    if document_count == 0:
        return f"Citation [{index}] points to no supplied document: none were supplied"
    return (
        f"Citation [{index}] points to no supplied document "
        f"(valid numbers are 1 to {document_count})"
    )


def validate_citations(text: str, documents: Sequence[SourceDocument]) -> CitationCheck:
    """Resolve the markers of `text` against `documents`, numbered from 1.

    Valid citations come back unique and in order of first appearance; each number that
    points to no document is listed once in `invalid` with a warning.
    """
    citations: list[Citation] = []
    invalid: list[int] = []
    for index in cited_indices(text):
        if is_valid_index(index, len(documents)):
            document = documents[index - 1]
            citations.append(
                Citation(index, document.id, document.title, document.url, document.passage)
            )
        else:
            invalid.append(index)
    warnings = tuple(invalid_citation_warning(index, len(documents)) for index in invalid)
    return CitationCheck(tuple(citations), tuple(invalid), warnings)


def strip_invalid_citations(text: str, document_count: int) -> tuple[str, tuple[int, ...]]:
    """Remove the numbers that point to no document from every marker of `text`.

    `[1, 9]` becomes `[1]`; a marker left empty is removed with the space before it, so
    `claim [9].` becomes `claim.`. Returns the repaired text and the removed numbers (unique,
    in order of first appearance).
    """
    removed: dict[int, None] = {}
    result = text
    for marker in reversed(find_markers(text)):
        valid = [i for i in marker.indices if is_valid_index(i, document_count)]
        if len(valid) == len(marker.indices):
            continue
        replacement = f"[{', '.join(str(i) for i in valid)}]" if valid else ""
        start, end = marker.start, marker.end
        if not valid:
            start, end = _removal_span(result, start, end)
        result = result[:start] + replacement + result[end:]
    for marker in find_markers(text):
        for index in marker.indices:
            if not is_valid_index(index, document_count):
                removed.setdefault(index, None)
    return result, tuple(removed)


def strip_markers(text: str) -> str:
    """`text` without any citation markers (used on source sentences before re-citing them)."""
    result = text
    for marker in reversed(find_markers(text)):
        start, end = _removal_span(result, marker.start, marker.end)
        result = result[:start] + result[end:]
    return result


def _removal_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a marker's span to take the whitespace that would be left dangling."""
    before = start
    while before > 0 and text[before - 1] in " \t":
        before -= 1
    following = text[end] if end < len(text) else ""
    if before < start:
        if not following or following.isspace() or following in _CLOSING_PUNCTUATION:
            return before, end
        return start, end
    if start == 0 or text[start - 1] == "\n":
        after = end
        while after < len(text) and text[after] in " \t":
            after += 1
        return start, after
    return start, end
