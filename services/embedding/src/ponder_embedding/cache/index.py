"""Per-namespace vector indexes searched by cosine similarity: a usearch HNSW graph that is
searched exhaustively while the namespace is small and approximately beyond that."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

# onnxruntime must be loaded before usearch: the other order segfaults when onnxruntime is
# imported (usearch 2.26.6, onnxruntime 1.32.0; see tests/unit/embedding/test_cache_index.py).
import onnxruntime  # noqa: F401
from usearch.compiled import ScalarKind
from usearch.index import Index

from ponder_embedding.cache.entries import Vector


logger = logging.getLogger(__name__)

# Below this many entries a search compares the query with every vector (exact, under 1 ms at
# 20k x 384 on these cores); from it on, the HNSW graph answers (see BENCHMARKS.md, "Semantic
# cache at a million entries", for recall and latency at 1M).
EXACT_SEARCH_BELOW = 20_000
# HNSW parameters. With connectivity 16 recall@1 fell to 0.92 at 100k and 0.84 at 1M entries
# of crowded near-duplicates (bench/bench_cache_scale.py); 32 gave 1.0 on the same 100k
# (BENCHMARKS.md, "Semantic cache at a million entries"; not yet rerun at 1M).
CONNECTIVITY = 32
EXPANSION_ADD = 128
EXPANSION_SEARCH = 64
# Vectors are stored as float16: half the memory of float32, cosine within ~1e-3.
SCALAR = ScalarKind.F16

Labels = npt.NDArray[np.uint64]


def label_of(key: str) -> int:
    """The 64-bit label that stands for `key` in the graph (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def _new_graph(dimensions: int) -> Index:
    return Index(
        ndim=dimensions,
        metric="cos",
        dtype=SCALAR,
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


class NamespaceIndex:
    """The vectors of one namespace in a usearch index (HNSW, float16, cosine).

    Keys are the cache's string keys; the graph holds 64-bit labels derived from them
    (`label_of`), so a saved graph can be matched with the entries loaded from the backend
    without storing the mapping. Removal marks the node deleted (usearch reuses it later).
    """

    def __init__(self, dimensions: int, *, exact_below: int = EXACT_SEARCH_BELOW) -> None:
        self.dimensions = dimensions
        self.exact_below = exact_below
        self._graph = _new_graph(dimensions)
        self._keys: dict[int, str] = {}
        self.changes = 0  # adds and removals since the last save or load

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def expansion_search(self) -> int:
        """Candidates the graph search keeps (efSearch): higher is slower and more exact."""
        return int(self._graph.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self._graph.expansion_search = value  # type: ignore[misc]

    @property
    def memory_bytes(self) -> int:
        """Bytes the graph and its vectors take (usearch's own count; excludes the key map)."""
        return int(self._graph.memory_usage)

    def add(self, key: str, vector: Vector) -> None:
        """Insert or replace the vector of `key`."""
        label = label_of(key)
        known = self._keys.get(label)
        if known is not None and known != key:
            logger.warning("cache key label collision; entry not indexed", extra={"key": key})
            return
        if known is not None:
            self._graph.remove(label)
        self._graph.add(label, np.asarray(vector, dtype=np.float32))
        self._keys[label] = key
        self.changes += 1

    def remove(self, key: str) -> None:
        """Drop `key` (no-op when absent)."""
        label = label_of(key)
        if self._keys.get(label) != key:
            return
        del self._keys[label]
        self._graph.remove(label)
        self.changes += 1

    def search(self, query: Vector, k: int = 1) -> list[tuple[str, float]]:
        """The `k` most similar keys with their cosine similarity, best first."""
        count = len(self._keys)
        if count == 0:
            return []
        found = self._graph.search(
            np.asarray(query, dtype=np.float32), min(k, count), exact=count < self.exact_below
        )
        return [
            (self._keys[int(label)], 1.0 - float(distance))
            for label, distance in zip(found.keys, found.distances, strict=True)
            if int(label) in self._keys
        ]

    def sync(self, keys: Sequence[str], vectors: Sequence[Vector]) -> tuple[int, int]:
        """Make the index hold exactly `keys`: labels not among them are removed, keys it does
        not hold yet are added in one multi-threaded batch. Returns (added, removed)."""
        wanted = {label_of(key): i for i, key in enumerate(keys)}
        held = set(self._keys) or {int(x) for x in np.asarray(self._graph.keys, dtype=np.uint64)}
        stale = [label for label in held if label not in wanted]
        if stale:
            self._graph.remove(np.asarray(stale, dtype=np.uint64))
        missing = [i for label, i in wanted.items() if label not in held]
        if missing:
            labels = np.asarray([label_of(keys[i]) for i in missing], dtype=np.uint64)
            matrix = np.vstack([np.asarray(vectors[i], dtype=np.float32) for i in missing])
            self._graph.add(labels, matrix, threads=0)
        self._keys = {label: keys[i] for label, i in wanted.items()}
        self.changes = 0
        return len(missing), len(stale)

    def save(self, path: Path) -> None:
        """Write the graph to `path` atomically (a temporary file, then a rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        self._graph.save(str(partial))
        partial.replace(path)
        self.changes = 0

    @classmethod
    def load(
        cls, path: Path, dimensions: int, *, exact_below: int = EXACT_SEARCH_BELOW
    ) -> NamespaceIndex | None:
        """The graph saved at `path`, or None when absent, unreadable or of other dimensions.
        Its keys are unknown until `sync` (which also reconciles it with the stored entries)."""
        if not path.exists():
            return None
        try:
            graph = Index.restore(
                str(path), expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH
            )
        except Exception as exc:
            logger.warning("unreadable cache index", extra={"path": str(path), "error": str(exc)})
            return None
        if graph is None or graph.ndim != dimensions or graph.dtype != SCALAR:
            return None
        index = cls(dimensions, exact_below=exact_below)
        index._graph = graph
        return index


class IndexFiles:
    """Where the namespaces' indexes are saved between runs: one usearch file per namespace
    (named by a digest of the namespace) in `folder`, next to the cache's SQLite file.
    Without a folder, indexes are built from the stored vectors at every start."""

    def __init__(self, folder: Path | None, dimensions: int) -> None:
        self.folder = folder
        self.dimensions = dimensions

    def path(self, namespace: str) -> Path | None:
        """The file of `namespace`'s index (None without a folder)."""
        if self.folder is None:
            return None
        digest = hashlib.sha256(namespace.encode()).hexdigest()[:32]
        return self.folder / f"{digest}.usearch"

    def open(
        self, by_namespace: dict[str, tuple[list[str], list[Vector]]]
    ) -> dict[str, NamespaceIndex]:
        """An index per namespace holding exactly the given keys: the saved graph when there
        is one (only the difference is added or removed), else built from the stored vectors.
        Files of namespaces that no longer have entries are deleted."""
        indexes: dict[str, NamespaceIndex] = {}
        for namespace, (keys, vectors) in by_namespace.items():
            path = self.path(namespace)
            index = None if path is None else NamespaceIndex.load(path, self.dimensions)
            loaded = index is not None
            if index is None:
                index = NamespaceIndex(self.dimensions)
            added, removed = index.sync(keys, vectors)
            logger.info(
                "cache index ready",
                extra={"entries": len(index), "loaded": loaded, "added": added, "removed": removed},
            )
            indexes[namespace] = index
        if self.folder is not None and self.folder.is_dir():
            current = {self.path(namespace) for namespace in indexes}
            for stale in self.folder.glob("*.usearch"):
                if stale not in current:
                    stale.unlink(missing_ok=True)
        return indexes

    def save(self, indexes: dict[str, NamespaceIndex]) -> None:
        """Write every index that changed since it was loaded or saved; drop empty ones."""
        for namespace, index in indexes.items():
            path = self.path(namespace)
            if path is None:
                continue
            if len(index) == 0:
                path.unlink(missing_ok=True)
            elif index.changes or not path.exists():
                index.save(path)
