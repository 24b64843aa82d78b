"""load_library(): the shipped sample library, user folders, ids and errors."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.library import LibraryError, load_library


ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}")


@pytest.fixture(scope="module")
def sample() -> list[FoundDocument]:
    """The shipped sample library, loaded once."""
    return load_library([])


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
    def test_md_txt_and_jsonl_documents(self, tmp_path: Path) -> None:
        """.md/.txt files (title line + text) and .jsonl records load, sub-folders included."""
        _write(tmp_path / "notes.md", "# My RAG notes\n\nRetrieval helps.\nIt grounds answers.\n")
        _write(tmp_path / "deep" / "plain.txt", "Plain title\nSome plain text.\n")
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
        _write(tmp_path / "ignored.pdf", "not a document")
        docs = {doc.id: doc for doc in load_library([tmp_path], include_sample=False)}
        assert set(docs) == {
            "library:notes",
            "library:plain",
            "library:local-1",
            "arxiv:2401.00001",
        }
        notes = docs["library:notes"]
        assert notes.title == "My RAG notes"
        assert notes.summary == "Retrieval helps. It grounds answers."
        assert notes.url == notes.pdf_url == ""
        assert notes.published is None
        assert notes.arxiv_id == notes.doi == ""
        assert docs["library:plain"].title == "Plain title"
        assert docs["library:local-1"].summary == "Body one."
        second = docs["arxiv:2401.00001"]
        assert second.arxiv_id == "2401.00001"
        assert second.doi == "10.1000/second"
        assert second.authors == ("Ada Lovelace",)
        assert second.published == dt.date(2024, 1, 1)
        assert second.categories == ("cs.IR",)
        assert second.pdf_url == "https://arxiv.org/pdf/2401.00001"

    def test_folders_add_to_the_sample(self, tmp_path: Path) -> None:
        """User documents come on top of the sample library."""
        _write(tmp_path / "extra.md", "Extra\ntext\n")
        docs = load_library([tmp_path])
        assert len(docs) == 52
        assert "library:extra" in {doc.id for doc in docs}

    def test_same_id_keeps_the_last(self, tmp_path: Path) -> None:
        """Documents with the same id are loaded once (the later one wins)."""
        _write(tmp_path / "a.jsonl", json.dumps({"id": "x", "title": "Old", "text": "t"}))
        _write(tmp_path / "b.jsonl", json.dumps({"id": "x", "title": "New", "text": "t"}))
        (doc,) = load_library([tmp_path], include_sample=False)
        assert doc.title == "New"

    def test_user_copy_of_a_sample_paper_replaces_it(self, tmp_path: Path) -> None:
        """A user record with a sample paper's arxiv_id has the same arxiv:<id> id and
        replaces the sample's copy instead of adding a second one."""
        record = {"arxiv_id": "2005.11401", "title": "My RAG copy", "summary": "Annotated."}
        _write(tmp_path / "mine.jsonl", json.dumps(record) + "\n")
        docs = load_library([tmp_path])
        assert len(docs) == 51
        (rag,) = [doc for doc in docs if doc.id == "arxiv:2005.11401"]
        assert (rag.title, rag.summary) == ("My RAG copy", "Annotated.")

    def test_malformed_jsonl_line_names_file_and_line(self, tmp_path: Path) -> None:
        """A line that is not JSON raises LibraryError naming <file>:<line>."""
        path = _write(
            tmp_path / "broken.jsonl",
            json.dumps({"id": "ok", "title": "Fine", "text": "t"}) + "\n\n{not json\n",
        )
        with pytest.raises(LibraryError, match=rf"^{re.escape(str(path))}:3: not JSON: "):
            load_library([tmp_path], include_sample=False)

    @pytest.mark.parametrize(
        "record",
        [{"title": "No id", "text": "t"}, {"id": "x", "text": "t"}, {"id": "x", "title": "T"}],
        ids=["no-id", "no-title", "no-text"],
    )
    def test_incomplete_record_names_file_and_line(
        self, tmp_path: Path, record: dict[str, str]
    ) -> None:
        """A record without id, title or text raises LibraryError naming <file>:<line>."""
        path = _write(tmp_path / "partial.jsonl", json.dumps(record) + "\n")
        with pytest.raises(LibraryError, match=rf"^{re.escape(str(path))}:1: needs an id"):
            load_library([tmp_path], include_sample=False)

    def test_text_file_without_body(self, tmp_path: Path) -> None:
        """A .md file with only a title line raises LibraryError naming the file."""
        path = _write(tmp_path / "title-only.md", "# Just a title\n\n")
        with pytest.raises(LibraryError, match=re.escape(f"{path}: needs a title line")):
            load_library([tmp_path], include_sample=False)

    def test_missing_folder(self, tmp_path: Path) -> None:
        """A folder that does not exist raises LibraryError naming it."""
        missing = tmp_path / "nope"
        with pytest.raises(LibraryError, match=re.escape(f"{missing}: not a folder")):
            load_library([missing], include_sample=False)
