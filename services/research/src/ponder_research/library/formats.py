"""Text out of a document's bytes, by media type: Markdown, plain text, HTML (main text) and PDF
(text layer, by page). Offsets of sections point into `ExtractedDocument.text`; for Markdown and
plain text that is the file's own text, so offsets are the file's."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import PurePath

from markdown_it import MarkdownIt
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from selectolax.lexbor import LexborHTMLParser


logger = logging.getLogger(__name__)

MARKDOWN = "text/markdown"
PLAIN_TEXT = "text/plain"
HTML = "text/html"
PDF = "application/pdf"
JSONL = "application/jsonl"
MEDIA_TYPES = (MARKDOWN, PLAIN_TEXT, HTML, PDF)
_SUFFIXES = {
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": PLAIN_TEXT,
    ".text": PLAIN_TEXT,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
    ".jsonl": JSONL,
}
# Elements that hold navigation, chrome or code rather than a page's main text.
_CHROME = (
    "script, style, noscript, template, svg, nav, header, footer, aside, form, button, iframe, "
    "[role=navigation], [role=banner], [role=contentinfo], [role=search], [aria-hidden=true]"
)
_BLOCKS = "h1, h2, h3, h4, h5, h6, p, li, pre, blockquote, dt, dd, td, th, figcaption, caption"
_HEADING = re.compile(r"h([1-6])")


class UnreadableDocument(Exception):
    """A document whose text cannot be extracted; names it and says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the text under one heading (or one PDF page): `text[start:end]`."""

    start: int
    end: int
    heading: str = ""  # heading path, outer first: "Operations > Scheduling"
    page: int = 0  # 1-based PDF page, 0 when the format has no pages


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """A document's plain text, title and sections (in order, not overlapping)."""

    name: str
    media_type: str
    title: str
    text: str
    sections: tuple[Section, ...]

    @property
    def pages(self) -> int:
        """Pages of a PDF; for other formats, one per 3,000 characters (at least one)."""
        if self.media_type == PDF:
            return max((s.page for s in self.sections), default=0)
        return max(1, round(len(self.text) / 3000))


def media_type_for(name: str) -> str:
    """The media type a file name's suffix implies; "" when it is none this library reads."""
    return _SUFFIXES.get(PurePath(name).suffix.lower(), "")


def extract(data: bytes, media_type: str, name: str) -> ExtractedDocument:
    """The text of a Markdown, plain-text, HTML or PDF document; UnreadableDocument otherwise."""
    media_type = media_type.partition(";")[0].strip().lower()
    if media_type == PDF:
        document = _pdf(data, name)
    elif media_type == HTML:
        document = _html(_decode(data, name), name)
    elif media_type == MARKDOWN:
        document = _markdown(_decode(data, name), name)
    elif media_type == PLAIN_TEXT:
        document = _plain(_decode(data, name), name)
    else:
        raise UnreadableDocument(
            name, f"media type {media_type or '(none)'!r} is not one of {', '.join(MEDIA_TYPES)}"
        )
    if not document.text.strip():
        raise UnreadableDocument(name, "no text found")
    return document


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(name, f"not UTF-8 text (byte {exc.start})") from None


def _first_line_title(text: str, name: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line.lstrip("#").strip()[:200] or PurePath(name).stem


def _plain(text: str, name: str) -> ExtractedDocument:
    return ExtractedDocument(
        name, PLAIN_TEXT, _first_line_title(text, name), text, (Section(0, len(text)),)
    )


def _markdown(text: str, name: str) -> ExtractedDocument:
    """Sections start at each heading (fenced code is not mistaken for one)."""
    tokens = MarkdownIt("commonmark").parse(text)
    line_starts = [0]
    for match in re.finditer("\n", text):
        line_starts.append(match.end())
    headings: list[tuple[int, int, str]] = []  # (offset, level, heading text)
    for position, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            inline = tokens[position + 1]
            headings.append((line_starts[token.map[0]], int(token.tag[1]), inline.content.strip()))
    sections = []
    trail: list[tuple[int, str]] = []
    if not headings or headings[0][0] > 0:
        sections.append(Section(0, headings[0][0] if headings else len(text)))
    for number, (start, level, heading) in enumerate(headings):
        end = headings[number + 1][0] if number + 1 < len(headings) else len(text)
        trail = [*(item for item in trail if item[0] < level), (level, heading)]
        sections.append(Section(start, end, " > ".join(h for _, h in trail if h)))
    first = next((h for _, level, h in headings if level == 1 and h), "")
    return ExtractedDocument(
        name, MARKDOWN, first or _first_line_title(text, name), text, tuple(sections)
    )


def _html(markup: str, name: str) -> ExtractedDocument:
    """The main text (the <main> or <article> element, else the body) without navigation,
    headers, footers, asides, forms or scripts; sections start at headings."""
    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title")
    page_title = " ".join(title_node.text().split()) if title_node is not None else ""
    for node in tree.css(_CHROME):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.css_first("[role=main]")
    root = root or tree.body or tree.root
    if root is None:
        raise UnreadableDocument(name, "no HTML body")
    chosen = root.css(_BLOCKS)
    ids = {node.mem_id for node in chosen}
    parts: list[str] = []
    sections: list[Section] = []
    trail: list[tuple[int, str]] = []
    offset = 0
    section_start, heading = 0, ""
    for node in chosen:
        parent, nested = node.parent, False
        while parent is not None and parent.mem_id != root.mem_id:
            if parent.mem_id in ids:
                nested = True
                break
            parent = parent.parent
        if nested:
            continue
        raw = node.text(deep=True, separator=" ")
        block = raw.strip("\n") if node.tag == "pre" else " ".join(raw.split())
        if not block:
            continue
        level = _HEADING.fullmatch(node.tag or "")
        if level is not None:
            if offset > section_start:
                sections.append(Section(section_start, offset, heading))
            depth = int(level.group(1))
            trail = [*(item for item in trail if item[0] < depth), (depth, block)]
            section_start, heading = offset, " > ".join(h for _, h in trail)
        parts.append(block)
        offset += len(block) + 2
    text = "\n\n".join(parts)
    if len(text) > section_start:
        sections.append(Section(section_start, len(text), heading))
    first_h1 = next((h for d, h in trail if d == 1), "")
    title = page_title or first_h1 or _first_line_title(text, name)
    return ExtractedDocument(name, HTML, title, text, tuple(sections))


def _pdf(data: bytes, name: str) -> ExtractedDocument:
    """The text layer, one section per page; encrypted or broken files are unreadable."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument(name, "the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title or "") if reader.metadata else ""
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(
            name, f"not a readable PDF ({type(exc).__name__}: {exc})"
        ) from None
    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    for number, raw in enumerate(pages, start=1):
        page = raw.strip()
        if page:
            sections.append(Section(offset, offset + len(page), page=number))
            parts.append(page)
            offset += len(page) + 2
    text = "\n\n".join(parts)
    if not text:
        raise UnreadableDocument(name, "the PDF has no text layer (scanned pages need OCR)")
    title = str(meta_title).strip() or _first_line_title(text, name)
    return ExtractedDocument(name, PDF, title, text, tuple(sections))
