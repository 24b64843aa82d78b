"""Citation markers: finding, validating against the source list, and stripping bad ones."""

import pytest

from ponder_reflection.citations import (
    cited_indices,
    find_markers,
    format_marker,
    strip_invalid_citations,
    strip_markers,
    validate_citations,
)
from ponder_reflection.types import Citation, SourceDocument


THREE_DOCS = tuple(
    SourceDocument(id=f"doc-{n}", title=f"Title {n}", text="", url=f"https://example.org/{n}")
    for n in (1, 2, 3)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No markers at all.", ()),
        ("One claim [1].", ((1,),)),
        ("Listed [1, 3] and [2,3].", ((1, 3), (2, 3))),
        ("Adjacent [2][4] markers.", ((2,), (4,))),
        ("Spaced [ 1 ] and words [a] are not markers.", ()),
        ("Leading zeros [01] still count.", ((1,),)),
        ("Seven digits [1234567] are not a marker.", ()),
    ],
)
def test_find_markers_reads_every_marker_form(
    text: str, expected: tuple[tuple[int, ...], ...]
) -> None:
    """Single, comma-listed and adjacent markers are found; look-alikes are not."""
    assert tuple(m.indices for m in find_markers(text)) == expected


def test_find_markers_reports_spans() -> None:
    """Each marker's span covers exactly its brackets."""
    text = "Claim [2][4]."
    spans = [text[m.start : m.end] for m in find_markers(text)]
    assert spans == ["[2]", "[4]"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A [2]. B [1]. C [2].", (2, 1)),
        ("A [3, 1][1]. B [2].", (3, 1, 2)),
        ("Nothing cited.", ()),
    ],
)
def test_cited_indices_are_unique_in_first_appearance_order(
    text: str, expected: tuple[int, ...]
) -> None:
    """Numbers come back once each, in the order they are first cited."""
    assert cited_indices(text) == expected


@pytest.mark.parametrize(
    ("text", "cited", "invalid"),
    [
        ("A [1]. B [3].", (1, 3), ()),
        ("A [2]. B [9].", (2,), (9,)),
        ("A [0, 1]. B [4][4].", (1,), (0, 4)),
        ("A [3][2][3]. B [1].", (3, 2, 1), ()),
        ("Uncited text.", (), ()),
    ],
)
def test_validate_citations_splits_valid_from_invalid(
    text: str, cited: tuple[int, ...], invalid: tuple[int, ...]
) -> None:
    """Valid numbers resolve to documents in first-appearance order; others are reported."""
    check = validate_citations(text, THREE_DOCS)
    assert tuple(c.index for c in check.citations) == cited
    assert check.invalid == invalid
    assert len(check.warnings) == len(invalid)
    for index, warning in zip(invalid, check.warnings, strict=True):
        assert f"[{index}]" in warning


def test_validate_citations_maps_to_document_fields() -> None:
    """A citation carries the id, title and url of the document it points to."""
    check = validate_citations("Claim [2].", THREE_DOCS)
    assert check.citations == (Citation(2, "doc-2", "Title 2", "https://example.org/2"),)


def test_validate_citations_with_no_documents_flags_every_marker() -> None:
    """With no documents every marker is invalid and the warning says none were supplied."""
    check = validate_citations("Claim [1].", ())
    assert check.citations == ()
    assert check.invalid == (1,)
    assert "none were supplied" in check.warnings[0]


@pytest.mark.parametrize(
    ("text", "expected_text", "removed"),
    [
        ("Claim [9].", "Claim.", (9,)),
        ("Claim [1, 9].", "Claim [1].", (9,)),
        ("Claim [9] and more [2].", "Claim and more [2].", (9,)),
        ("Claim [9][2].", "Claim [2].", (9,)),
        ("Claim [2][9].", "Claim [2].", (9,)),
        ("Claim [9] [8].", "Claim.", (9, 8)),
        ("[7] Leading marker.", "Leading marker.", (7,)),
        ("All fine [1][3].", "All fine [1][3].", ()),
        ("Zero [0] is invalid [1].", "Zero is invalid [1].", (0,)),
    ],
)
def test_strip_invalid_citations(text: str, expected_text: str, removed: tuple[int, ...]) -> None:
    """Invalid numbers are removed, emptied markers vanish with their space, valid ones stay."""
    assert strip_invalid_citations(text, 3) == (expected_text, removed)


def test_strip_markers_removes_all_markers() -> None:
    """Source sentences lose their own reference markers before being re-cited."""
    assert strip_markers("As shown [12], RAG helps [3][4].") == "As shown, RAG helps."


def test_format_marker_writes_adjacent_markers() -> None:
    """Several citations are written as adjacent single markers."""
    assert format_marker([1, 3]) == "[1][3]"
    assert format_marker([]) == ""
