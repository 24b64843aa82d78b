"""The local library: documents from the shipped sample library and user folders."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ponder_research.documents import FoundDocument, SourceKind


logger = logging.getLogger(__name__)

SAMPLE_LIBRARY = "sample_library.jsonl"


class LibraryError(Exception):
    """A library file cannot be read; the message names the file and line."""


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


def _read_jsonl(text: str, origin: str) -> list[FoundDocument]:
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LibraryError(f"{origin}:{number}: not JSON: {exc.msg}") from None
        documents.append(_from_record(record, f"{origin}:{number}"))
    return documents


def _read_text(path: Path) -> FoundDocument:
    """A .md/.txt file: the first non-empty line (without '#') is the title, the rest the text."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    content = [line for line in lines if line]
    if len(content) < 2:
        raise LibraryError(f"{path}: needs a title line and some text")
    title = content[0].lstrip("#").strip()
    record: dict[str, object] = {"id": path.stem, "title": title, "text": " ".join(content[1:])}
    return _from_record(record, str(path))


def load_library(dirs: Sequence[Path], *, include_sample: bool = True) -> list[FoundDocument]:
    """Every document of the sample library (optional) and of the given folders."""
    documents: list[FoundDocument] = []
    if include_sample:
        sample = resources.files("ponder_research") / "data" / SAMPLE_LIBRARY
        documents.extend(_read_jsonl(sample.read_text(encoding="utf-8"), SAMPLE_LIBRARY))
    for folder in dirs:
        if not folder.is_dir():
            raise LibraryError(f"{folder}: not a folder")
        for path in sorted(folder.rglob("*")):
            if path.suffix == ".jsonl":
                documents.extend(_read_jsonl(path.read_text(encoding="utf-8"), str(path)))
            elif path.suffix in {".md", ".txt"}:
                documents.append(_read_text(path))
    unique = {doc.id: doc for doc in documents}
    logger.info("library loaded", extra={"documents": len(unique), "folders": len(dirs)})
    return list(unique.values())
