"""The `ponder library` helpers and how a cited passage is shown in references."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_cli.library import document_name, media_type
from ponder_cli.render import citations_view, passage_place


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.PDF", "application/pdf"),
        ("notes.md", "text/markdown"),
        ("page.htm", "text/html"),
        ("plain.txt", "text/plain"),
        ("archive.zip", "application/zip"),
        ("no-suffix", "application/octet-stream"),
    ],
)
def test_media_types_come_from_the_suffix(name: str, expected: str) -> None:
    """Known suffixes map to the four readable types; others to what mimetypes says."""
    assert media_type(Path(name)) == expected


def test_documents_are_named_by_id_or_by_name() -> None:
    """An id is put in the --library; a full name is kept."""
    assert document_name("abc", "team") == "libraries/team/documents/abc"
    assert document_name("libraries/x/documents/y", "team") == "libraries/x/documents/y"


def test_a_cited_passage_shows_its_page_or_section_and_characters() -> None:
    """PDF passages show their page, others their section; both their character span."""
    assert passage_place(document_pb2.Passage(page=3, start_offset=45, end_offset=133)) == (
        "page 3, characters 45-133"
    )
    section = document_pb2.Passage(heading="Ops > Scheduling", start_offset=10, end_offset=90)
    assert passage_place(section) == "§ Ops > Scheduling, characters 10-90"
    result = pb.WorkflowResult(
        citations=[
            document_pb2.Citation(index=1, document_id="d", title="Handbook", passage=section)
        ]
    )
    assert "[1] Handbook\n    § Ops > Scheduling, characters 10-90" in citations_view(result).plain
