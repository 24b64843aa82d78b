"""The folder sources of the library: the shipped sample library (JSONL records) and the user's
folders (PONDER_RESEARCH_LIBRARY_DIRS) of Markdown, text, HTML, PDF and JSONL files. A file that
cannot be read is logged and skipped; the rest of the library loads."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ponder_research.documents import FoundDocument, Passage, SourceKind
from ponder_research.library.formats import (
    JSONL,
    PLAIN_TEXT,
    ExtractedDocument,
    Section,
    UnreadableDocument,
    extract,
    media_type_for,
)
from ponder_research.library.index import LibraryIndex
from ponder_research.library.passages import split_passages


logger = logging.getLogger(__name__)

SAMPLE_LIBRARY = "sample_library.jsonl"


class LibraryError(Exception):
    """A library folder or record cannot be read; the message names the file (and line)."""


@dataclass(frozen=True, slots=True)
class LibraryFile:
    """One document read from a folder: what LibraryIndex.add takes."""

    id: str
    name: str
    media_type: str
    title: str
    passages: tuple[Passage, ...]
    details: FoundDocument | None = None

    def add_to(self, index: LibraryIndex) -> None:
        """Add (or replace) this document in `index`."""
        index.add(
            self.id,
            self.name,
            self.media_type,
            self.passages,
            title=self.title,
            details=self.details,
        )


def _from_record(record: dict[str, object], origin: str) -> FoundDocument:
    """A library document from one JSON object (sample-library schema, or id/title/text)."""
    arxiv_id = str(record.get("arxiv_id") or "")
    raw_id = arxiv_id or str(record.get("id") or "")
    title = str(record.get("title") or "").strip()
    summary = str(record.get("summary") or record.get("text") or "").strip()
    if not raw_id or not title or not summary:
        raise LibraryError(f"{origin}: needs an id (or arxiv_id), a title and a summary/text")
    year = record.get("year")
    authors = record.get("authors") or []
    # Long author lists are cut to their first names plus a literal "et al." marker.
    category = record.get("primary_category")
    return FoundDocument(
        # An arXiv paper has the same id whichever source finds it, so citations are stable.
        id=f"arxiv:{arxiv_id}" if arxiv_id else f"library:{raw_id}",
        title=title,
        summary=summary,
        source=SourceKind.LIBRARY,
        authors=tuple(str(a) for a in authors if a != "et al.")
        if isinstance(authors, list)
        else (),
        url=str(record.get("url") or ""),
        published=dt.date(int(year), 1, 1) if isinstance(year, int) else None,
        categories=(str(category),) if category else (),
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
        found_in=(SourceKind.LIBRARY,),
        arxiv_id=arxiv_id,
        doi=str(record.get("doi") or ""),
    )


def read_jsonl(text: str, origin: str) -> list[LibraryFile]:
    """The records of a JSONL file, one document each (its summary/text is split into
    passages); LibraryError names <origin>:<line> of a bad record."""
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LibraryError(f"{origin}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise LibraryError(f"{origin}:{number}: not a JSON object")
        details = _from_record(record, f"{origin}:{number}")
        body = ExtractedDocument(
            origin,
            PLAIN_TEXT,
            details.title,
            details.summary,
            (Section(0, len(details.summary)),),
        )
        documents.append(
            LibraryFile(
                details.id,
                f"{Path(origin).name}:{number}",
                JSONL,
                details.title,
                tuple(split_passages(body, details.id)),
                details,
            )
        )
    return documents


def read_file(path: Path) -> list[LibraryFile]:
    """The documents of one file (a JSONL file holds several); [] for other suffixes;
    LibraryError or UnreadableDocument when it cannot be read."""
    media_type = media_type_for(path.name)
    if media_type == JSONL:
        return read_jsonl(path.read_text(encoding="utf-8"), str(path))
    if not media_type:
        return []
    document = extract(path.read_bytes(), media_type, str(path))
    document_id = f"library:{path.stem}"
    return [
        LibraryFile(
            document_id,
            path.name,
            media_type,
            document.title,
            tuple(split_passages(document, document_id)),
        )
    ]


def load_library(dirs: Sequence[Path], *, include_sample: bool = True) -> list[LibraryFile]:
    """Every document of the sample library (optional) and of the given folders (sub-folders
    included); a later document with the same id replaces an earlier one. A file that cannot
    be read is logged and skipped; a folder that does not exist raises LibraryError."""
    documents: list[LibraryFile] = []
    if include_sample:
        sample = resources.files("ponder_research") / "data" / SAMPLE_LIBRARY
        documents.extend(read_jsonl(sample.read_text(encoding="utf-8"), SAMPLE_LIBRARY))
    skipped = 0
    for folder in dirs:
        if not folder.is_dir():
            raise LibraryError(f"{folder}: not a folder")
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            try:
                documents.extend(read_file(path))
            except (LibraryError, UnreadableDocument, OSError, UnicodeDecodeError) as exc:
                skipped += 1
                logger.warning(
                    "library file skipped", extra={"file": str(path), "reason": str(exc)}
                )
    unique = {doc.id: doc for doc in documents}
    logger.info(
        "library loaded",
        extra={"documents": len(unique), "folders": len(dirs), "skipped_files": skipped},
    )
    return list(unique.values())
