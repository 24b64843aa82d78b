"""Per-namespace vector indexes searched by cosine similarity: a usearch HNSW graph that is
searched exhaustively while the namespace is small and approximately beyond that."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# onnxruntime must be loaded before usearch: the other order segfaults when onnxruntime is
# imported (usearch 2.26.6, onnxruntime 1.32.0; see tests/unit/embedding/test_cache_index.py).
import onnxruntime  # noqa: F401
from usearch.compiled import ScalarKind
from usearch.index import Index, Indexes

from ponder_embedding.cache.entries import Vector


logger = logging.getLogger(__name__)

# Below this many entries a search compares the query with every vector (exact, under 1 ms at
# 20k x 384 on these cores); from it on, the HNSW graph answers (see BENCHMARKS.md, "Semantic
# cache at a million entries", for recall and latency at 1M).
EXACT_SEARCH_BELOW = 20_000
# HNSW parameters. With connectivity 16 recall@1 fell to 0.92 at 100k and 0.84 at 1M entries
# of crowded near-duplicates (bench/bench_cache_scale.py); 32 gave 1.0 on the same 100k
# (BENCHMARKS.md, "Semantic cache at a million entries"), and so does 1M in 100k segments.
CONNECTIVITY = 32
EXPANSION_ADD = 128
# Candidates each segment's search keeps (efSearch; a lookup asks each segment for its 8 best,
# so it keeps at least 8). At 1M entries in segments of 100k, recall@1 against exact search is
# 0.9975 at 8, 12 and 16 (0.99 at 4, 1.0 from 32) and the search takes 2.1 ms at 8, 2.7 at
# 12, 9.3 at 64; a recall miss costs a cache hit, never a wrong answer (BENCHMARKS.md,
# "Semantic cache at a million entries").
EXPANSION_SEARCH = 8
# Threads that search the segments of one query side by side (usearch's own, in one native
# call): two, where the host has a second core. At 1M entries (10 segments) a lookup with 2
# threads took 1.82-1.95x a raw encode against 1.99-2.13x with 1, on 2 otherwise quiet cores
# (BENCHMARKS.md, "Semantic cache at a million entries").
SEARCH_THREADS = min(2, os.cpu_count() or 1)
# Vectors per graph (segment): at 1M, segments of 100k gave recall@1 1.0 and of 200k 0.98
# (M 32; BENCHMARKS.md, "Semantic cache at a million entries", has both runs).
SEGMENT_SIZE = 100_000
# Vectors are stored as float16: half the memory of float32, cosine within ~1e-3.
SCALAR = ScalarKind.F16


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """How the segments of a namespace are searched."""

    expansion: int = EXPANSION_SEARCH  # efSearch of each segment
    threads: int = SEARCH_THREADS  # usearch threads over the segments of one query


DEFAULT_SEARCH = SearchOptions()


def label_of(key: str) -> int:
    """The 64-bit label that stands for `key` in the graph (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def _new_graph(dimensions: int, expansion_search: int = EXPANSION_SEARCH) -> Index:
    return Index(
        ndim=dimensions,
        metric="cos",
        dtype=SCALAR,
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=expansion_search,
    )


def _segment_files(prefix: Path) -> list[Path]:
    """The segment files saved under `prefix`, in segment order."""
    found = []
    for path in prefix.parent.glob(f"{prefix.name}-*.usearch"):
        number = path.name[len(prefix.name) + 1 : -len(".usearch")]
        if number.isdigit():
            found.append((int(number), path))
    return [path for _, path in sorted(found)]


class NamespaceIndex:
    """The vectors of one namespace in usearch indexes (HNSW, float16, cosine), in segments.

    A namespace is a list of segments of at most `segment_size` vectors each (new vectors go
    to the last segment; a full one starts the next); a search asks every segment and keeps
    the best. One graph per 100k vectors keeps recall@1 at 1.0 where a single graph over 1M
    crowded near-duplicates fell to 0.84, and builds in a fraction of the time (BENCHMARKS.md,
    "Semantic cache at a million entries"). Keys are the cache's string keys; the graphs hold
    64-bit labels derived from them (`label_of`), so saved graphs can be matched with the
    entries loaded from the backend without storing the mapping. Removal marks the node
    deleted (usearch reuses it later).
    """

    def __init__(
        self,
        dimensions: int,
        *,
        exact_below: int = EXACT_SEARCH_BELOW,
        segment_size: int = SEGMENT_SIZE,
        search: SearchOptions = DEFAULT_SEARCH,
    ) -> None:
        self.dimensions = dimensions
        self.exact_below = exact_below
        self.segment_size = segment_size
        self.search_threads = search.threads
        self._expansion_search = search.expansion
        self._segments: list[Index] = []
        self._all = Indexes()  # every segment, searched in one native call
        self._live: list[int] = []  # vectors held per segment
        self._where: dict[int, int] = {}  # label -> segment
        self._keys: dict[int, str] = {}
        self.changes = 0  # adds and removals since the last save or load

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def segments(self) -> int:
        """How many graphs the namespace is split into."""
        return len(self._segments)

    @property
    def expansion_search(self) -> int:
        """Candidates each graph search keeps (efSearch): higher is slower and more exact."""
        return self._expansion_search

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self._expansion_search = value
        for graph in self._segments:
            graph.expansion_search = value  # type: ignore[misc]

    @property
    def memory_bytes(self) -> int:
        """Bytes the graphs and their vectors take (usearch's own count; excludes the key map)."""
        return sum(int(graph.memory_usage) for graph in self._segments)

    def _open_segment(self) -> int:
        """The segment new vectors go to (the last one, or a new one when it is full)."""
        if not self._segments or self._live[-1] >= self.segment_size:
            self._append(_new_graph(self.dimensions, self._expansion_search), 0)
        return len(self._segments) - 1

    def _append(self, graph: Index, live: int) -> None:
        """Add a segment holding `live` vectors."""
        self._segments.append(graph)
        self._live.append(live)
        self._all.merge(graph)

    def add(self, key: str, vector: Vector) -> None:
        """Insert or replace the vector of `key`."""
        label = label_of(key)
        known = self._keys.get(label)
        if known is not None and known != key:
            logger.warning("cache key label collision; entry not indexed", extra={"key": key})
            return
        if known is not None:
            segment = self._where[label]
            self._segments[segment].remove(label)
        else:
            segment = self._open_segment()
            self._live[segment] += 1
        self._segments[segment].add(label, np.asarray(vector, dtype=np.float32))
        self._where[label] = segment
        self._keys[label] = key
        self.changes += 1

    def remove(self, key: str) -> None:
        """Drop `key` (no-op when absent)."""
        label = label_of(key)
        if self._keys.get(label) != key:
            return
        del self._keys[label]
        segment = self._where.pop(label)
        self._segments[segment].remove(label)
        self._live[segment] -= 1
        self.changes += 1

    def search(self, query: Vector, k: int = 1) -> list[tuple[str, float]]:
        """The `k` most similar keys with their cosine similarity, best first."""
        count = len(self._keys)
        if count == 0:
            return []
        vector = np.asarray(query, dtype=np.float32)
        exact = count < self.exact_below
        if len(self._segments) == 1:
            matches = self._segments[0].search(vector, k, exact=exact, threads=1)
        else:
            # One native call over every segment (each keeps its best k, merged best first):
            # a Python call per segment cost more than a small segment's search.
            matches = self._all.search(vector, k, exact=exact, threads=self.search_threads)
        found = zip(matches.distances.tolist(), matches.keys.tolist(), strict=True)
        return [
            (self._keys[int(label)], 1.0 - float(distance))
            for distance, label in sorted(found)[:k]
            if int(label) in self._keys
        ]

    def sync(self, keys: Sequence[str], vectors: Sequence[Vector]) -> tuple[int, int]:
        """Make the index hold exactly `keys`: labels not among them are removed, keys it does
        not hold yet are added in multi-threaded batches. Returns (added, removed)."""
        wanted = {label_of(key): i for i, key in enumerate(keys)}
        stale = [label for label in self._where if label not in wanted]
        by_segment: dict[int, list[int]] = {}
        for label in stale:
            by_segment.setdefault(self._where.pop(label), []).append(label)
        for segment, gone in by_segment.items():
            self._segments[segment].remove(np.asarray(gone, dtype=np.uint64))
            self._live[segment] -= len(gone)
        missing = [i for label, i in wanted.items() if label not in self._where]
        start = 0
        while start < len(missing):
            segment = self._open_segment()
            batch = missing[start : start + self.segment_size - self._live[segment]]
            labels = np.asarray([label_of(keys[i]) for i in batch], dtype=np.uint64)
            matrix = np.vstack([np.asarray(vectors[i], dtype=np.float32) for i in batch])
            self._segments[segment].add(labels, matrix, threads=0)
            self._live[segment] += len(batch)
            self._where.update(dict.fromkeys(labels.tolist(), segment))
            start += len(batch)
        self._keys = {label: keys[i] for label, i in wanted.items()}
        self.changes = 0
        return len(missing), len(stale)

    def save(self, prefix: Path) -> None:
        """Write each segment to `prefix-<n>.usearch` atomically (a temporary file, then a
        rename); files of segments beyond the current count are deleted."""
        prefix.parent.mkdir(parents=True, exist_ok=True)
        for number, graph in enumerate(self._segments):
            path = prefix.with_name(f"{prefix.name}-{number}.usearch")
            partial = path.with_name(path.name + ".partial")
            graph.save(str(partial))
            partial.replace(path)
        for extra in _segment_files(prefix)[len(self._segments) :]:
            extra.unlink(missing_ok=True)
        self.changes = 0

    @classmethod
    def load(
        cls,
        prefix: Path,
        dimensions: int,
        *,
        exact_below: int = EXACT_SEARCH_BELOW,
        search: SearchOptions = DEFAULT_SEARCH,
    ) -> NamespaceIndex | None:
        """The segments saved under `prefix`, or None when absent, unreadable or of other
        dimensions. Its keys are unknown until `sync` (which also reconciles it with the
        stored entries)."""
        files = _segment_files(prefix)
        if not files:
            return None
        index = cls(dimensions, exact_below=exact_below, search=search)
        for path in files:
            try:
                graph = Index.restore(
                    str(path), expansion_add=EXPANSION_ADD, expansion_search=search.expansion
                )
            except Exception as exc:
                logger.warning(
                    "unreadable cache index", extra={"path": str(path), "error": str(exc)}
                )
                return None
            if graph is None or graph.ndim != dimensions or graph.dtype != SCALAR:
                return None
            labels = np.asarray(graph.keys, dtype=np.uint64).tolist()
            index._where.update(dict.fromkeys(labels, len(index._segments)))
            index._append(graph, len(labels))
        return index


class IndexFiles:
    """Where the namespaces' indexes are saved between runs: one usearch file per segment
    (`<digest of the namespace>-<n>.usearch`) in `folder`, next to the cache's SQLite file.
    Without a folder, indexes are built from the stored vectors at every start."""

    def __init__(
        self, folder: Path | None, dimensions: int, search: SearchOptions = DEFAULT_SEARCH
    ) -> None:
        self.folder = folder
        self.dimensions = dimensions
        self.search = search

    def new(self) -> NamespaceIndex:
        """An empty index searched with this folder's options."""
        return NamespaceIndex(self.dimensions, search=self.search)

    def path(self, namespace: str) -> Path | None:
        """The prefix of `namespace`'s segment files (None without a folder)."""
        if self.folder is None:
            return None
        return self.folder / hashlib.sha256(namespace.encode()).hexdigest()[:32]

    def open(
        self, by_namespace: dict[str, tuple[list[str], list[Vector]]]
    ) -> dict[str, NamespaceIndex]:
        """An index per namespace holding exactly the given keys: the saved graphs when there
        are some (only the difference is added or removed), else built from the stored
        vectors. Files of namespaces that no longer have entries are deleted."""
        indexes: dict[str, NamespaceIndex] = {}
        for namespace, (keys, vectors) in by_namespace.items():
            path = self.path(namespace)
            index = (
                None
                if path is None
                else NamespaceIndex.load(path, self.dimensions, search=self.search)
            )
            loaded = index is not None
            if index is None:
                index = self.new()
            added, removed = index.sync(keys, vectors)
            logger.info(
                "cache index ready",
                extra={
                    "entries": len(index),
                    "segments": index.segments,
                    "loaded": loaded,
                    "added": added,
                    "removed": removed,
                },
            )
            indexes[namespace] = index
        if self.folder is not None and self.folder.is_dir():
            current = {path.name for namespace in indexes if (path := self.path(namespace))}
            for stale in self.folder.glob("*.usearch"):
                if stale.name.rsplit("-", 1)[0] not in current:
                    stale.unlink(missing_ok=True)
        return indexes

    def save(self, indexes: dict[str, NamespaceIndex]) -> None:
        """Write every index that changed since it was loaded or saved; drop empty ones."""
        for namespace, index in indexes.items():
            path = self.path(namespace)
            if path is None:
                continue
            saved = _segment_files(path)
            if len(index) == 0:
                for file in saved:
                    file.unlink(missing_ok=True)
            elif index.changes or not saved:
                index.save(path)
