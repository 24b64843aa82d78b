"""Uploaded documents as a domain, on a real SQLite store and a real (keyword-only) passage
index: limits, dedupe, tenancy, PENDING -> INDEXED/FAILED with watches, deletes that drop the
passages and change the tenant's version, and states and documents that survive a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ponder_research.library import MEDIA_TYPES, LibraryIndex
from ponder_research.uploads.indexing import TenantIndexes
from ponder_research.uploads.manager import (
    BadUpload,
    DocumentNotFound,
    LibraryFull,
    Limits,
    Uploads,
    UploadTooLarge,
)
from ponder_research.uploads.store import DocumentState, DocumentStore, StoredDocument
from tests.library_files import markdown, pdf_bytes


NOTE = markdown("Glasshouse notes", [("Watering", "The glasshouse ferns are misted at dawn.")])


class Library:
    """Uploads over a store file, with their per-tenant indexes (no embedder: keywords)."""

    def __init__(self, path: Path, *, max_documents: int = 3) -> None:
        self.indexes = TenantIndexes(lambda: LibraryIndex(None), retry_seconds=60)
        self.uploads = Uploads(
            DocumentStore(path),
            self.indexes,
            Limits(max_bytes=64 * 1024, max_documents=max_documents),
            set(MEDIA_TYPES),
            version=lambda tenant: f"{tenant}:{self.indexes.version(tenant)}",
        )

    async def done(self, tenant: str, doc: StoredDocument) -> StoredDocument:
        """The document's last state from its watch (INDEXED or FAILED)."""
        states = [d async for d in self.uploads.watch(tenant, name(doc))]
        assert states[-1].state != DocumentState.PENDING
        return states[-1]


def name(doc: StoredDocument) -> str:
    """The document's resource name."""
    return f"libraries/{doc.library}/documents/{doc.id}"


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[Library]:
    """A started library on a fresh file."""
    opened = Library(tmp_path / "uploads.sqlite3")
    await opened.uploads.start()
    yield opened
    await opened.uploads.close()


async def test_an_upload_is_indexed_and_searchable_for_its_tenant_only(library: Library) -> None:
    """PENDING at first, then INDEXED with its passages; its tenant's search finds the
    passage, another tenant's finds nothing and cannot read it."""
    doc = await library.uploads.create(
        "a", "libraries/plants", NOTE.encode(), "text/markdown", "n.md"
    )
    assert doc.state == DocumentState.PENDING
    done = await library.done("a", doc)
    assert done.state == DocumentState.INDEXED
    assert done.passage_count >= 1
    hits = await library.indexes.search("a", "When are the glasshouse ferns misted?", 3)
    assert [hit.document.id for hit in hits] == [name(doc)]
    assert "misted at dawn" in hits[0].passages[0].passage.text
    assert await library.indexes.search("b", "glasshouse ferns", 3) == []
    with pytest.raises(DocumentNotFound):
        await library.uploads.get("b", name(doc))
    assert await library.uploads.page("b", "libraries/plants", after=0, limit=10) == []


async def test_same_bytes_dedupe_and_limits_refuse_clearly(library: Library) -> None:
    """The same bytes return the stored document; too large, empty, unknown media type and a
    bad library id name their field; a full library is LibraryFull."""
    first = await library.uploads.create("a", "libraries/x", b"one", "text/plain", "1.txt")
    again = await library.uploads.create("a", "libraries/x", b"one", "text/plain", "other.txt")
    assert again.id == first.id
    with pytest.raises(UploadTooLarge) as large:
        await library.uploads.create("a", "libraries/x", b"z" * 70_000, "text/plain", "z")
    assert large.value.field == "file.data"
    for data, media, parent, field in (
        (b"", "text/plain", "libraries/x", "file.data"),
        (b"zip", "application/zip", "libraries/x", "file.content_type"),
        (b"bad", "text/plain", "shelves/x", "parent"),
    ):
        with pytest.raises(BadUpload) as bad:
            await library.uploads.create("a", parent, data, media, "f")
        assert bad.value.field == field
    await library.uploads.create("a", "libraries/x", b"two", "text/plain", "2.txt")
    await library.uploads.create("a", "libraries/x", b"three", "text/plain", "3.txt")
    with pytest.raises(LibraryFull, match="holds 3 documents"):
        await library.uploads.create("a", "libraries/x", b"four", "text/plain", "4.txt")
    assert await library.uploads.create("b", "libraries/x", b"four", "text/plain", "4.txt")


async def test_a_broken_pdf_fails_with_its_name_and_the_rest_is_indexed(library: Library) -> None:
    """A PDF that cannot be read is FAILED with a reason naming it; a good one beside it is
    INDEXED with its page."""
    bad = await library.uploads.create(
        "a", "libraries/r", b"%PDF-1.4 garbage", "application/pdf", "bad.pdf"
    )
    good = await library.uploads.create(
        "a",
        "libraries/r",
        pdf_bytes(["One.", "Tides are logged in cobalt ink."]),
        "application/pdf",
        "ok.pdf",
    )
    failed = await library.done("a", bad)
    assert failed.state == DocumentState.FAILED
    assert failed.failure_reason.startswith("bad.pdf: ")
    assert (await library.done("a", good)).state == DocumentState.INDEXED
    hits = await library.indexes.search("a", "cobalt ink tides", 3)
    assert hits[0].passages[0].passage.page == 2


async def test_delete_drops_the_passages_and_changes_the_version(library: Library) -> None:
    """After a delete the passages are gone, Get is DocumentNotFound and the returned
    version differs from the one before."""
    doc = await library.uploads.create("a", "libraries/p", NOTE.encode(), "text/markdown", "n.md")
    await library.done("a", doc)
    before = f"a:{library.indexes.version('a')}"
    after = await library.uploads.delete("a", name(doc))
    assert after != before
    assert await library.indexes.search("a", "glasshouse ferns misted", 3) == []
    with pytest.raises(DocumentNotFound):
        await library.uploads.get("a", name(doc))


async def test_documents_and_states_survive_a_restart(tmp_path: Path) -> None:
    """A new process on the same file lists the same documents with their states, indexes
    them again in the background (searchable once restored) and keeps failures failed."""
    path = tmp_path / "uploads.sqlite3"
    first = Library(path)
    await first.uploads.start()
    doc = await first.uploads.create("a", "libraries/p", NOTE.encode(), "text/markdown", "n.md")
    bad = await first.uploads.create("a", "libraries/p", b"%PDF-1 x", "application/pdf", "b.pdf")
    await first.done("a", doc)
    await first.done("a", bad)
    await first.uploads.close()

    second = Library(path)
    await second.uploads.start()
    try:
        listed = await second.uploads.page("a", "libraries/p", after=0, limit=10)
        assert [(d.id, d.state) for d in listed] == [
            (doc.id, DocumentState.INDEXED),
            (bad.id, DocumentState.FAILED),
        ]
        await second.uploads.restored()
        hits = await second.indexes.search("a", "glasshouse ferns misted", 3)
        assert [hit.document.id for hit in hits] == [name(doc)]
    finally:
        await second.uploads.close()
