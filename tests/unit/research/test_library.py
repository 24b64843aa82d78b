"""load_library(): the shipped sample library, user folders, ids, and files it skips."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.library import LibraryError, LibraryFile, load_library
from tests.library_files import pdf_bytes


ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}")


def _details(files: list[LibraryFile]) -> list[FoundDocument]:
    """The records' metadata, or for plain files a document made of their passages."""
    return [
        file.details
        or FoundDocument(
            id=file.id,
            title=file.title,
            summary=" ".join(p.text for p in file.passages),
            source=SourceKind.LIBRARY,
            found_in=(SourceKind.LIBRARY,),
        )
        for file in files
    ]


def _load(dirs: list[Path], *, include_sample: bool = True) -> list[FoundDocument]:
    return _details(load_library(dirs, include_sample=include_sample))


@pytest.fixture(scope="module")
def sample() -> list[FoundDocument]:
    """The shipped sample library, loaded once."""
    return _load([])


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class TestSampleLibrary:
    def test_document_count(self, sample: list[FoundDocument]) -> None:
        """The sample library has 51 distinct documents."""
        assert len(sample) == 51
        assert len({doc.id for doc in sample}) == 51

    def test_ids_and_urls(self, sample: list[FoundDocument]) -> None:
        """Ids are arxiv:<arxiv id> (the same whichever source finds the paper); arxiv_id is
        set; urls and pdf urls point at that arXiv paper."""
        for doc in sample:
            prefix, _, arxiv_id = doc.id.partition(":")
            assert prefix == "arxiv", doc.id
            assert ARXIV_ID.fullmatch(arxiv_id), doc.id
            assert doc.arxiv_id == arxiv_id
            assert doc.url == f"https://arxiv.org/abs/{arxiv_id}"
            assert doc.pdf_url == f"https://arxiv.org/pdf/{arxiv_id}"
            assert doc.doi == ""

    def test_years_are_plausible(self, sample: list[FoundDocument]) -> None:
        """Every paper has a publication year matching its arXiv id (YYMM.number)."""
        for doc in sample:
            assert doc.published is not None, doc.id
            arxiv_id = doc.id.removeprefix("arxiv:")
            assert doc.published == dt.date(2000 + int(arxiv_id[:2]), 1, 1), doc.id
            assert 1990 <= doc.published.year <= dt.date.today().year

    def test_authors_without_et_al(self, sample: list[FoundDocument]) -> None:
        """Every paper has authors, and the "et al." marker of cut lists is dropped."""
        for doc in sample:
            assert doc.authors, doc.id
            assert all(author and "et al" not in author for author in doc.authors), doc.id

    def test_fields_are_filled(self, sample: list[FoundDocument]) -> None:
        """Every document has a title, a summary, a category, and LIBRARY as its source."""
        for doc in sample:
            assert doc.title.strip() == doc.title != ""
            assert len(doc.summary) > 100
            assert len(doc.categories) == 1
            assert doc.source is SourceKind.LIBRARY
            assert doc.found_in == (SourceKind.LIBRARY,)
            assert doc.score == 0.0

    def test_known_paper(self, sample: list[FoundDocument]) -> None:
        """The RAG paper is in the sample library with its metadata."""
        rag = next(doc for doc in sample if doc.id == "arxiv:2005.11401")
        assert rag.title == "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks"
        assert rag.published == dt.date(2020, 1, 1)
        assert "Patrick Lewis" in rag.authors

    def test_sample_can_be_left_out(self, tmp_path: Path) -> None:
        """include_sample=False loads only the given folders."""
        assert load_library([tmp_path], include_sample=False) == []


class TestUserFolders:
    def test_every_format_and_jsonl_records(self, tmp_path: Path) -> None:
        """.md/.txt/.html/.pdf files and .jsonl records load, sub-folders included; other
        suffixes are ignored."""
        _write(tmp_path / "notes.md", "# My RAG notes\n\nRetrieval helps.\nIt grounds answers.\n")
        _write(tmp_path / "deep" / "plain.txt", "Plain title\nSome plain text.\n")
        _write(tmp_path / "page.html", "<title>A page</title><main><p>Main text.</p></main>")
        (tmp_path / "paper.pdf").write_bytes(pdf_bytes(["Page one text."], title="A paper"))
        records = [
            {"id": "local-1", "title": "First record", "text": "Body one."},
            {
                "arxiv_id": "2401.00001",
                "title": "Second record",
                "summary": "Body two.",
                "authors": ["Ada Lovelace", "et al."],
                "year": 2024,
                "primary_category": "cs.IR",
                "url": "https://arxiv.org/abs/2401.00001",
                "doi": "10.1000/second",
            },
        ]
        _write(
            tmp_path / "records.jsonl",
            "\n".join(json.dumps(record) for record in records) + "\n\n",
        )
        _write(tmp_path / "ignored.doc", "not a document")
        files = {f.id: f for f in load_library([tmp_path], include_sample=False)}
        assert set(files) == {
            "library:notes",
            "library:plain",
            "library:page",
            "library:paper",
            "library:local-1",
            "arxiv:2401.00001",
        }
        notes = files["library:notes"]
        assert (notes.title, notes.name, notes.media_type) == (
            "My RAG notes",
            "notes.md",
            "text/markdown",
        )
        assert notes.details is None
        assert [p.text for p in notes.passages] == [
            "# My RAG notes\n\nRetrieval helps.\nIt grounds answers."
        ]
        assert files["library:plain"].title == "Plain title"
        assert files["library:page"].title == "A page"
        assert files["library:paper"].title == "A paper"
        assert files["library:paper"].passages[0].page == 1
        docs = {doc.id: doc for doc in _details(list(files.values()))}
        assert docs["library:local-1"].summary == "Body one."
        second = docs["arxiv:2401.00001"]
        assert second.arxiv_id == "2401.00001"
        assert second.doi == "10.1000/second"
        assert second.authors == ("Ada Lovelace",)
        assert second.published == dt.date(2024, 1, 1)
        assert second.categories == ("cs.IR",)
        assert second.pdf_url == "https://arxiv.org/pdf/2401.00001"
        assert files["arxiv:2401.00001"].passages[0].text == "Body two."

    def test_folders_add_to_the_sample(self, tmp_path: Path) -> None:
        """User documents come on top of the sample library."""
        _write(tmp_path / "extra.md", "Extra\ntext\n")
        docs = _load([tmp_path])
        assert len(docs) == 52
        assert "library:extra" in {doc.id for doc in docs}

    def test_same_id_keeps_the_last(self, tmp_path: Path) -> None:
        """Documents with the same id are loaded once (the later one wins)."""
        _write(tmp_path / "a.jsonl", json.dumps({"id": "x", "title": "Old", "text": "t"}))
        _write(tmp_path / "b.jsonl", json.dumps({"id": "x", "title": "New", "text": "t"}))
        (doc,) = _load([tmp_path], include_sample=False)
        assert doc.title == "New"

    def test_user_copy_of_a_sample_paper_replaces_it(self, tmp_path: Path) -> None:
        """A user record with a sample paper's arxiv_id has the same arxiv:<id> id and
        replaces the sample's copy instead of adding a second one."""
        record = {"arxiv_id": "2005.11401", "title": "My RAG copy", "summary": "Annotated."}
        _write(tmp_path / "mine.jsonl", json.dumps(record) + "\n")
        docs = _load([tmp_path])
        assert len(docs) == 51
        (rag,) = [doc for doc in docs if doc.id == "arxiv:2005.11401"]
        assert (rag.title, rag.summary) == ("My RAG copy", "Annotated.")

    @pytest.mark.parametrize(
        ("name", "content", "reason"),
        [
            (
                "broken.jsonl",
                '{"id": "ok", "title": "Fine", "text": "t"}\n\n{not json\n',
                ":3: not JSON",
            ),
            ("partial.jsonl", '{"title": "No id", "text": "t"}\n', ":1: needs an id"),
            ("scan.pdf", "%PDF-1.4 nothing", ": not a readable PDF"),
            ("latin.md", b"caf\xe9", ": not UTF-8 text"),
        ],
        ids=["bad-json", "no-id", "bad-pdf", "not-utf8"],
    )
    def test_unreadable_file_is_logged_and_skipped(
        self,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
        name: str,
        content: str | bytes,
        reason: str,
    ) -> None:
        """A file that cannot be read is skipped with a warning naming it (and the line);
        the other files of the folder load."""
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        _write(tmp_path / "good.md", "# Good\n\nFine text.\n")
        with caplog.at_level("WARNING", logger="ponder_research.library.folder"):
            files = load_library([tmp_path], include_sample=False)
        assert [f.id for f in files] == ["library:good"]
        (record,) = [r for r in caplog.records if r.getMessage() == "library file skipped"]
        assert getattr(record, "file") == str(path)  # noqa: B009 (a LogRecord extra)
        assert str(getattr(record, "reason")).startswith(str(path))  # noqa: B009
        assert reason in str(getattr(record, "reason"))  # noqa: B009

    def test_missing_folder(self, tmp_path: Path) -> None:
        """A folder that does not exist raises LibraryError naming it."""
        missing = tmp_path / "nope"
        with pytest.raises(LibraryError, match=re.escape(f"{missing}: not a folder")):
            _load([missing], include_sample=False)
