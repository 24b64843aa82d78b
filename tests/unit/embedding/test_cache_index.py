"""The cache's vector index (usearch HNSW): agreement with exact search, removal, and the
saved index reloaded after a restart without embedding anything again."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ponder_embedding.cache.core import SemanticCache
from ponder_embedding.cache.entries import entry_key
from ponder_embedding.cache.index import IndexFiles, NamespaceIndex, SearchOptions
from ponder_embedding.cache.sqlite_backend import SqliteBackend
from ponder_embedding.service import index_search_options
from ponder_embedding.settings import EmbeddingSettings
from tests.support.vectors import DIM, bag_of_words


def unit_rows(count: int, dim: int, seed: int) -> np.ndarray:
    """`count` random unit vectors."""
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    unit: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def near(rows: np.ndarray, seed: int, noise: float = 0.3) -> np.ndarray:
    """Unit vectors close to `rows` (queries whose nearest neighbour is known to exact search)."""
    moved = rows + noise * unit_rows(len(rows), rows.shape[1], seed)
    unit: np.ndarray = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return unit


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray, np.ndarray]:
    """3,000 keys with unit vectors in 32 dimensions, and 200 queries near some of them."""
    vectors = unit_rows(3000, 32, seed=1)
    keys = [f"key-{i}" for i in range(len(vectors))]
    return keys, vectors, near(vectors[::15], seed=2)


def exact_best(vectors: np.ndarray, query: np.ndarray) -> tuple[int, float]:
    """Row and cosine of the most similar vector, by a float32 matrix product."""
    scores = vectors @ query
    best = int(np.argmax(scores))
    return best, float(scores[best])


class TestSearch:
    """Search by cosine, exhaustive below the threshold and by the HNSW graph above it."""

    def test_hnsw_agrees_with_exact_search(self, data):
        """The approximate search finds the exact nearest key for ≥ 99% of queries, with the
        same cosine (float16 storage: within 0.002)."""
        keys, vectors, queries = data
        index = NamespaceIndex(32, exact_below=0)
        index.sync(keys, vectors)
        agree = 0
        for query in queries:
            (key, cosine), *_ = index.search(query, k=1)
            row, expected = exact_best(vectors, query)
            agree += key == keys[row]
            if key == keys[row]:
                assert cosine == pytest.approx(expected, abs=2e-3)
        assert agree / len(queries) >= 0.99

    def test_exact_mode_returns_the_exact_top_k_best_first(self, data):
        """Below `exact_below` entries the top k are exactly numpy's, best first."""
        keys, vectors, queries = data
        index = NamespaceIndex(32)
        for key, vector in zip(keys[:500], vectors[:500], strict=True):
            index.add(key, vector)
        found = index.search(queries[0], k=5)
        scores = vectors[:500] @ queries[0]
        assert [key for key, _ in found] == [keys[i] for i in np.argsort(-scores)[:5]]
        assert [c for _, c in found] == sorted((c for _, c in found), reverse=True)
        assert len(index) == 500

    def test_empty_index_finds_nothing(self):
        """Searching an empty namespace returns no candidates."""
        assert NamespaceIndex(8).search(unit_rows(1, 8, 3)[0], k=4) == []


class TestChanges:
    """Insert, replace and remove keep the graph and the key map in step."""

    def test_removed_keys_are_never_returned(self, data):
        """After removal (graph mode) a query equal to a removed vector finds another key;
        a removed key can be added back."""
        keys, vectors, _ = data
        index = NamespaceIndex(32, exact_below=0)
        index.sync(keys[:1000], vectors[:1000])
        for key in keys[:100]:
            index.remove(key)
        index.remove("never-added")
        assert len(index) == 900
        for row in range(100):
            (key, _), *_ = index.search(vectors[row], k=1)
            assert key not in keys[:100]
        index.add(keys[0], vectors[0])
        assert index.search(vectors[0], k=1)[0][0] == keys[0]
        assert len(index) == 901

    def test_add_replaces_the_vector_of_a_key(self):
        """Adding a key again moves it to its new vector (one entry, not two)."""
        a, b = unit_rows(2, 16, 4)
        index = NamespaceIndex(16)
        index.add("k", a)
        index.add("k", b)
        assert len(index) == 1
        ((key, cosine),) = index.search(b, k=2)
        assert key == "k"
        assert cosine == pytest.approx(1.0, abs=1e-3)


class TestFiles:
    """Saved graphs are reloaded and reconciled with the stored entries."""

    def test_saved_graph_is_reconciled_with_the_stored_keys(self, data, tmp_path):
        """A reloaded graph drops keys that are gone and adds only the new ones."""
        keys, vectors, _ = data
        files = IndexFiles(tmp_path / "index", 32)
        files.save({"ns": files.open({"ns": (keys[:1000], list(vectors[:1000]))})["ns"]})
        path = files.path("ns")
        assert path is not None
        assert path.with_name(path.name + "-0.usearch").exists()
        loaded = NamespaceIndex.load(path, 32)
        assert loaded is not None
        added, removed = loaded.sync(keys[100:1100], list(vectors[100:1100]))
        assert (added, removed) == (100, 100)
        assert len(loaded) == 1000
        assert loaded.search(vectors[1050], k=1)[0][0] == keys[1050]
        assert loaded.search(vectors[50], k=1)[0][0] != keys[50]

    def test_unreadable_or_mismatched_files_are_ignored(self, data, tmp_path):
        """A corrupt file or one of other dimensions is not used (the index is rebuilt)."""
        keys, vectors, _ = data
        (tmp_path / "bad-0.usearch").write_bytes(b"not an index")
        assert NamespaceIndex.load(tmp_path / "bad", 32) is None
        assert NamespaceIndex.load(tmp_path / "absent", 32) is None
        index = NamespaceIndex(32)
        index.sync(keys[:10], list(vectors[:10]))
        index.save(tmp_path / "ok")
        assert NamespaceIndex.load(tmp_path / "ok", 64) is None


class TestSegments:
    """A namespace past the segment size is split into graphs searched together."""

    def test_every_segment_is_searched_and_kept_within_its_size(self, data):
        """Vectors spread over segments of at most segment_size; each is found in its own."""
        keys, vectors, _ = data
        index = NamespaceIndex(32, exact_below=0, segment_size=300)
        index.sync(keys[:1000], list(vectors[:1000]))
        assert index.segments == 4
        for row in (0, 299, 300, 999):
            assert index.search(vectors[row], k=1)[0][0] == keys[row]
        index.add(keys[1000], vectors[1000])
        assert index.segments == 4
        assert index.search(vectors[1000], k=1)[0][0] == keys[1000]
        index.remove(keys[0])
        assert len(index) == 1000
        assert index.search(vectors[0], k=1)[0][0] != keys[0]

    def test_search_merges_the_best_across_segments(self, data):
        """k results come from all segments together, best first."""
        keys, vectors, _ = data
        index = NamespaceIndex(32, exact_below=0, segment_size=100)
        index.sync(keys[:500], list(vectors[:500]))
        found = index.search(vectors[250], k=5)
        assert found[0][0] == keys[250]
        similarities = [similarity for _, similarity in found]
        assert similarities == sorted(similarities, reverse=True)
        assert len(found) == 5

    def test_threads_over_segments_find_what_one_thread_finds(self, data):
        """Searching the segments side by side (usearch threads) returns the same candidates
        as the calling thread alone, also with an emptied segment among them."""
        keys, vectors, queries = data
        index = NamespaceIndex(32, exact_below=0, segment_size=400, search=SearchOptions(threads=2))
        index.sync(keys[:2000], list(vectors[:2000]))
        for key in keys[400:800]:  # the second segment, emptied
            index.remove(key)
        assert index.segments == 5
        for query in queries:
            index.search_threads = 2
            side_by_side = index.search(query, k=8)
            index.search_threads = 1
            assert side_by_side == index.search(query, k=8)
            assert len(side_by_side) == 8
        assert all(key not in keys[400:800] for key, _ in index.search(vectors[500], k=8))

    def test_search_expansion_reaches_every_segment_also_after_a_load(self, data, tmp_path):
        """The efSearch of the options (and a later change of it) is each segment's, also for
        segments loaded from files."""
        keys, vectors, _ = data
        options = SearchOptions(expansion=12)
        index = NamespaceIndex(32, exact_below=0, segment_size=250, search=options)
        index.sync(keys[:1000], list(vectors[:1000]))
        index.save(tmp_path / "ns")
        loaded = NamespaceIndex.load(tmp_path / "ns", 32, exact_below=0, search=options)
        assert loaded is not None
        for candidate in (index, loaded):
            assert candidate.expansion_search == 12
            assert {graph.expansion_search for graph in candidate._segments} == {12}
        loaded.expansion_search = 40
        assert {graph.expansion_search for graph in loaded._segments} == {40}
        assert loaded.sync(keys[:1000], list(vectors[:1000])) == (0, 0)
        assert loaded.search(vectors[700], k=1)[0][0] == keys[700]

    def test_segments_survive_a_save_and_load(self, data, tmp_path):
        """Saved segments load back as segments and are reconciled with the stored keys."""
        keys, vectors, _ = data
        index = NamespaceIndex(32, exact_below=0, segment_size=250)
        index.sync(keys[:1000], list(vectors[:1000]))
        index.save(tmp_path / "ns")
        assert len(list(tmp_path.glob("ns-*.usearch"))) == 4
        loaded = NamespaceIndex.load(tmp_path / "ns", 32, exact_below=0)
        assert loaded is not None
        assert loaded.segments == 4
        added, removed = loaded.sync(keys[10:1010], list(vectors[10:1010]))
        assert (added, removed) == (10, 10)
        assert loaded.search(vectors[600], k=1)[0][0] == keys[600]
        assert loaded.search(vectors[1005], k=1)[0][0] == keys[1005]


class CountingEmbed:
    """The bag-of-words embedding of test_cache_core, counting the texts it embeds."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return await bag_of_words(texts)


def open_cache(folder: Path, embed: CountingEmbed, *, index: bool = True) -> SemanticCache:
    """A cache over folder/cache.sqlite3 that saves its index in folder/index (or not)."""
    return SemanticCache(
        SqliteBackend(folder / "cache.sqlite3"),
        embed,
        dimensions=DIM,
        max_entries=100,
        default_ttl_seconds=3600.0,
        default_threshold=0.8,
        index_dir=folder / "index" if index else None,
    )


def index_reports(caplog: pytest.LogCaptureFixture) -> list[tuple[bool, int, int]]:
    """(loaded, added, removed) of each "cache index ready" log record."""
    return [
        (r.loaded, r.added, r.removed)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "cache index ready"
    ]


class TestRestart:
    """The cache reopened from its SQLite file loads the saved index; nothing is embedded."""

    async def test_restart_loads_the_index_without_embedding(self, tmp_path, caplog):
        """After a clean shutdown the saved graph is loaded as is (nothing added or removed,
        no embed call at start) and a paraphrase still hits."""
        caplog.set_level(logging.INFO, logger="ponder_embedding.cache.index")
        first = open_cache(tmp_path, CountingEmbed())
        await first.start()
        for topic in ("attention layers", "dense retrieval", "beam search", "lora adapters"):
            await first.store("ns", f"how do {topic} work in transformers", topic.encode())
        await first.close()
        assert list((tmp_path / "index").glob("*.usearch"))
        caplog.clear()

        embed = CountingEmbed()
        again = open_cache(tmp_path, embed)
        await again.start()
        assert embed.texts == []
        assert index_reports(caplog) == [(True, 0, 0)]
        result = await again.lookup("ns", "how do beam search work in transformers today")
        assert result.hit
        assert result.entry is not None
        assert result.entry.payload == b"beam search"
        assert embed.texts == ["how do beam search work in transformers today"]
        await again.close()

    async def test_entries_stored_after_the_last_save_are_added_from_stored_vectors(
        self, tmp_path, caplog
    ):
        """When the saved graph lags behind SQLite (a crash), start adds only the missing
        entries, from their stored vectors, and removes invalidated ones; no embed call."""
        caplog.set_level(logging.INFO, logger="ponder_embedding.cache.index")
        first = open_cache(tmp_path, CountingEmbed())
        await first.start()
        await first.store("ns", "what is retrieval augmented generation", b"rag")
        await first.store("ns", "what is speculative decoding", b"spec")
        await first.close()
        unsaved = open_cache(tmp_path, CountingEmbed(), index=False)  # writes SQLite only
        await unsaved.start()
        await unsaved.store("ns", "what is mixture of experts routing", b"moe")
        assert await unsaved.invalidate("ns", entry_key("ns", "what is speculative decoding")) == 1
        await unsaved.close()
        caplog.clear()

        embed = CountingEmbed()
        again = open_cache(tmp_path, embed)
        await again.start()
        assert embed.texts == []
        assert index_reports(caplog) == [(True, 1, 1)]
        moe = await again.lookup("ns", "what is mixture of experts routing today")
        assert moe.entry is not None
        assert moe.entry.payload == b"moe"
        gone = await again.lookup("ns", "what is speculative decoding today")
        assert gone.entry is None or gone.entry.payload != b"spec"
        await again.close()


def test_index_module_then_onnxruntime_imports_cleanly():
    """Importing the index (usearch) and then onnxruntime does not crash the interpreter
    (usearch first, then onnxruntime, segfaults unless the index module orders them)."""
    code = "import ponder_embedding.cache.index, onnxruntime, numpy; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-2000:]


class TestSearchSettings:
    """PONDER_CACHE_INDEX_* reach the indexes the cache creates and loads."""

    async def test_settings_give_every_namespace_index_its_search_options(self, tmp_path):
        """The efSearch and thread count from the settings are those of a new namespace's
        index and of one loaded from its files; unset, the index's defaults apply."""
        settings = EmbeddingSettings.model_validate(
            {"PONDER_CACHE_INDEX_EXPANSION_SEARCH": 24, "PONDER_CACHE_INDEX_SEARCH_THREADS": 0}
        )
        options = index_search_options(settings)
        assert options == SearchOptions(expansion=24, threads=0)
        assert index_search_options(EmbeddingSettings.model_validate({})) == SearchOptions()
        for _ in range(2):  # a new index, then the one loaded from the saved files
            cache = SemanticCache(
                SqliteBackend(tmp_path / "cache.sqlite3"),
                CountingEmbed(),
                dimensions=DIM,
                max_entries=100,
                default_ttl_seconds=3600.0,
                default_threshold=0.8,
                index_dir=tmp_path / "index",
                index_search=options,
            )
            await cache.start()
            await cache.store("ns", "how does dense retrieval work", b"answer")
            index = cache._indexes["ns"]
            assert (index.expansion_search, index.search_threads) == (24, 0)
            assert {graph.expansion_search for graph in index._segments} == {24}
            await cache.close()
