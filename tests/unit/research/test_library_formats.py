"""extract() per format and split_passages(): structure, sizes, overlap and exact offsets."""

from __future__ import annotations

import itertools
import re

import pytest

from ponder_research.library import (
    HTML,
    MARKDOWN,
    PDF,
    PLAIN_TEXT,
    ExtractedDocument,
    UnreadableDocument,
    embedding_text,
    extract,
    media_type_for,
    split_passages,
)
from ponder_research.library.passages import MAX_WORDS
from tests.library_files import html_page, markdown, pdf_bytes


def _sentences(topic: str, count: int) -> str:
    return " ".join(
        f"Sentence {n} about {topic} explains one more detail of the {topic} process."
        for n in range(count)
    )


SECTIONS = [
    ("Overview", _sentences("overview", 12)),
    ("Scheduling", _sentences("scheduling", 30) + "\n\n" + _sentences("annealing", 25)),
    ("Billing", _sentences("billing", 8)),
]


def _check_offsets(document: ExtractedDocument, document_id: str) -> None:
    passages = split_passages(document, document_id)
    assert passages
    for number, passage in enumerate(passages):
        assert document.text[passage.start : passage.end] == passage.text
        assert passage.index == number
        assert passage.document_id == document_id
        assert len(passage.text.split()) <= MAX_WORDS
        assert passage.text == passage.text.strip()


class TestMarkdown:
    def test_sections_follow_headings(self) -> None:
        """Sections start at headings (path of nested headings); the title is the # heading;
        a '#' line inside fenced code is not a heading."""
        text = markdown("Acme Handbook", SECTIONS) + "\n```sh\n# not a heading\nls\n```\n"
        document = extract(text.encode(), MARKDOWN, "handbook.md")
        assert document.title == "Acme Handbook"
        assert document.text == text
        headings = [s.heading for s in document.sections]
        assert headings == [
            "Acme Handbook",
            "Acme Handbook > Overview",
            "Acme Handbook > Scheduling",
            "Acme Handbook > Billing",
        ]

    def test_passages_split_long_sections_with_overlap(self) -> None:
        """A long section becomes several passages within the size limit that overlap; each
        passage's offsets give back its text; short sections stay whole."""
        document = extract(markdown("Acme Handbook", SECTIONS).encode(), MARKDOWN, "h.md")
        _check_offsets(document, "library:h")
        passages = split_passages(document, "library:h")
        scheduling = [p for p in passages if p.heading.endswith("Scheduling")]
        assert len(scheduling) >= 3
        for first, second in itertools.pairwise(scheduling):
            assert second.start < first.end  # overlap
            assert second.start > first.start
        assert any("annealing" in p.text for p in scheduling)
        (billing,) = [p for p in passages if p.heading.endswith("Billing")]
        assert billing.text.startswith("## Billing")
        assert billing.page == 0

    def test_embedding_text_names_title_and_heading(self) -> None:
        """What is embedded starts with the heading path (the title not repeated)."""
        document = extract(markdown("Acme Handbook", SECTIONS).encode(), MARKDOWN, "h.md")
        passage = split_passages(document, "library:h")[-1]
        text = embedding_text(document.title, passage)
        assert text.startswith("Acme Handbook > Billing\n")
        assert text.endswith(passage.text)


class TestPlainText:
    def test_paragraphs_and_one_very_long_line(self) -> None:
        """Plain text: title from the first line; a paragraph with no sentence ends is cut by
        words; offsets are exact."""
        text = "Field notes\n\nShort first paragraph.\n\n" + "word " * 400 + "\n"
        document = extract(text.encode("utf-8-sig"), "text/plain; charset=utf-8", "notes.txt")
        assert document.media_type == PLAIN_TEXT
        assert document.title == "Field notes"
        _check_offsets(document, "library:notes")
        assert len(split_passages(document, "library:notes")) >= 3


class TestHtml:
    def test_main_text_without_navigation(self) -> None:
        """HTML: the <main> text with headings as sections; navigation, header, footer, aside,
        scripts and styles are gone."""
        page = html_page("Acme Operations", SECTIONS)
        document = extract(page.encode(), HTML, "ops.html")
        assert document.title == "Acme Operations"
        for chrome in ("Products", "About us", "newsletter", "Copyright", "tracking", "color"):
            assert chrome not in document.text
        assert "Sentence 29 about scheduling" in document.text
        assert [s.heading for s in document.sections] == [
            "Acme Operations",
            "Acme Operations > Overview",
            "Acme Operations > Scheduling",
            "Acme Operations > Billing",
        ]
        _check_offsets(document, "library:ops")


class TestPdf:
    def test_pages_are_sections(self) -> None:
        """PDF: the text layer, one section per page with its page number; the metadata title."""
        pages = [_sentences("intro", 5), _sentences("scheduling", 40), _sentences("billing", 5)]
        document = extract(pdf_bytes(pages, title="Acme Report"), PDF, "report.pdf")
        assert document.title == "Acme Report"
        assert [s.page for s in document.sections] == [1, 2, 3]
        assert document.pages == 3
        passages = split_passages(document, "library:report")
        assert {p.page for p in passages if "scheduling" in p.text} == {2}
        assert "Sentence 39 about scheduling" in " ".join(document.text.split())
        _check_offsets(document, "library:report")


class TestUnreadable:
    @pytest.mark.parametrize(
        ("data", "media_type", "reason"),
        [
            (b"%PDF-1.4 garbage", PDF, "not a readable PDF"),
            (pdf_bytes([""]), PDF, "no text layer"),
            (b"\xff\xfe\x00bad", MARKDOWN, "not UTF-8 text"),
            (b"   \n\n", PLAIN_TEXT, "no text found"),
            (b"PK\x03\x04", "application/zip", "media type 'application/zip' is not one of"),
        ],
        ids=["broken-pdf", "scanned-pdf", "not-utf8", "empty", "zip"],
    )
    def test_clear_error_naming_the_file(self, data: bytes, media_type: str, reason: str) -> None:
        """A document that cannot be read raises UnreadableDocument naming it and saying why."""
        with pytest.raises(UnreadableDocument, match=rf"^bad\.file: .*{re.escape(reason)}") as info:
            extract(data, media_type, "bad.file")
        assert info.value.name == "bad.file"
        assert reason in info.value.reason


def test_media_type_for() -> None:
    """File suffixes map to media types; unknown ones to ""."""
    assert [media_type_for(n) for n in ("a.MD", "b.txt", "c.htm", "d.pdf", "e.jsonl", "f.doc")] == [
        MARKDOWN,
        PLAIN_TEXT,
        HTML,
        PDF,
        "application/jsonl",
        "",
    ]
