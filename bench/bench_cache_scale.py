"""The semantic cache at a million entries (issue 17, point 5), side by side in one run.

Usage: nice .venv/bin/python bench/bench_cache_scale.py [--entries 1000000] [--queries 400]
       [--compare-entries 100000] [--skip-faiss] [--skip-service] [--rebuild-restart]
       [--rss-entries 10000] [--before-src DIR] [--work-dir DIR [--keep]]
       [--recall-expansions 4 8 16 ...] [--service-expansions 12 64 ...]

1. Data: R real questions (templates x topics) embedded by the real model (ONNX backend);
   half of the remaining N-R vectors are perturbations of a real embedding (c + s*g, s drawn
   from [0.5, 1.2], normalised: cosine 0.64-0.89 to their centre), half random unit vectors.
   Queries are paraphrases of real questions, embedded by the real model.
2. Index candidates in this process, on the same (first --compare-entries) vectors, with 2
   threads to build and 1 to search, then the cache's index alone on all N: usearch (the
   cache's own NamespaceIndex, HNSW f16) and faiss-cpu (IndexHNSWFlat, same M /
   efConstruction / efSearch): build time, memory per entry, single-query search p50/p99,
   recall@1 against exact search (a float32 matrix product).
3. The embedding service (its own process, over gRPC) on a SQLite file holding the N entries
   and the saved index: restart time to SERVING, RSS, LookupCache paraphrase p50/p99 against
   the raw single-query ONNX encode in this process (each query's raw encode right before its
   lookup, interleaved, so both meet the same load); once per efSearch given with
   --service-expansions (default: the shipped one), side by side; optionally
   (--rebuild-restart) the restart with no index file (rebuilt from the stored vectors,
   nothing re-embedded). --recall-expansions adds recall@1 and search time of the N-entry
   index at other efSearch values (no rebuild).
4. RSS of the service with --rss-entries entries on the ONNX backend, and (with --before-src,
   a checkout of the previous code's services/embedding/src) the same for the previous code.
Prints a Markdown report (paste it into BENCHMARKS.md).

With --keep, the N-entry SQLite file and the saved index stay in --work-dir (scale-<N>/,
about 3 GiB at 1M) and a later run with the same N and index parameters reuses them: the
graph is loaded instead of built (an hour-long step at 1M on 2 cores) and the SQLite file is
not rewritten; the build time then reads "reused".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import resource
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from ponder.embedding.v1 import embedding_service_pb2 as pb
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_devstack.measure import ms, rss_mib
from ponder_devstack.stack import only_service
from ponder_embedding.cache.entries import entry_key
from ponder_embedding.cache.index import (
    CONNECTIVITY,
    EXPANSION_ADD,
    EXPANSION_SEARCH,
    SEARCH_THREADS,
    SEGMENT_SIZE,
    IndexFiles,
    NamespaceIndex,
)
from ponder_embedding.model import EmbeddingModel, ModelOptions, normalize
from ponder_runtime.internal_auth import INTERNAL_TOKEN_HEADER


Matrix = npt.NDArray[np.float32]
INTERNAL_TOKEN = secrets.token_urlsafe(32)  # this run's services and lookups share it
NAMESPACE = "bench"
DATA_VERSION = 1  # bump when the data set changes (kept files are then rebuilt)
TOPICS = [
    "attention", "retrieval-augmented generation", "self-reflection", "tokenization",
    "quantization", "knowledge distillation", "beam search", "RLHF", "LoRA adapters",
    "model sharding", "KV caching", "speculative decoding", "chain-of-thought prompting",
    "tool use", "vector databases", "BM25", "dense passage retrieval", "reranking",
    "mixture of experts", "positional encodings", "contrastive learning", "instruction tuning",
    "sparse attention", "layer normalization", "dropout", "curriculum learning",
    "reward modeling", "self-consistency", "tree-of-thought search", "agent memory",
    "hallucination detection", "prompt injection", "long-context models", "federated learning",
    "active learning", "graph neural networks", "diffusion models", "code generation",
    "multilingual transfer", "model calibration",
]  # fmt: skip
TEMPLATES = [
    "How does {t} work in large language models?",
    "What are the main limitations of {t}?",
    "Why is {t} useful for question answering?",
    "When should a practitioner use {t}?",
    "What recent papers improve {t}?",
    "How is {t} evaluated in practice?",
    "What are common failure modes of {t}?",
    "How does {t} scale with model size?",
    "What is the history of {t}?",
    "How does {t} compare with simpler baselines?",
]
PARAPHRASES = [
    "In large language models, how does {t} work?",
    "What limits {t} the most?",
    "For question answering, why is {t} helpful?",
    "In which situations should practitioners apply {t}?",
    "Which recent papers make {t} better?",
    "In practice, how do people evaluate {t}?",
    "What typically goes wrong with {t}?",
    "How does {t} behave as models grow larger?",
    "What is the historical background of {t}?",
    "How does {t} stack up against simple baselines?",
]


def real_texts() -> tuple[list[str], list[str]]:
    """Questions and their paraphrases (same order), with five variants per template."""
    questions, paraphrases = [], []
    for variant in ("", " Explain briefly.", " Give examples.", " Cite sources.", " In 2026?"):
        for topic in TOPICS:
            for template, paraphrase in zip(TEMPLATES, PARAPHRASES, strict=True):
                questions.append(template.format(t=topic) + variant)
                paraphrases.append(paraphrase.format(t=topic) + variant)
    return questions, paraphrases


def synthesize(real: Matrix, total: int, seed: int = 7) -> Matrix:
    """`total` unit vectors: `real` first, then perturbations of real ones, then random ones."""
    rng = np.random.default_rng(seed)
    out = np.empty((total, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    rest = total - len(real)
    near = rest // 2
    chunk = 50_000
    for start in range(0, rest, chunk):
        size = min(chunk, rest - start)
        noise = rng.standard_normal((size, real.shape[1])).astype(np.float32)
        noise /= np.sqrt(real.shape[1])
        block = noise
        around = max(0, min(size, near - start))
        if around:
            centres = real[rng.integers(0, len(real), around)]
            scale = rng.uniform(0.5, 1.2, (around, 1)).astype(np.float32)
            block[:around] = centres + scale * noise[:around]
        out[len(real) + start : len(real) + start + size] = normalize(block)
    return out


def exact_top1(matrix: Matrix, queries: Matrix) -> npt.NDArray[np.int64]:
    """Row index of each query's most similar vector (float32 matrix product, in chunks)."""
    best = np.full(len(queries), -1, dtype=np.int64)
    best_score = np.full(len(queries), -np.inf, dtype=np.float32)
    for start in range(0, len(matrix), 100_000):
        scores = matrix[start : start + 100_000] @ queries.T
        top = scores.argmax(axis=0)
        value = scores[top, np.arange(len(queries))]
        better = value > best_score
        best[better] = top[better] + start
        best_score[better] = value[better]
    return best


def bench_usearch(
    keys: list[str],
    matrix: Matrix,
    queries: Matrix,
    truth: npt.NDArray[np.int64],
    built: NamespaceIndex | None = None,
) -> tuple[dict[str, float], NamespaceIndex]:
    """The cache's own index (segments of SEGMENT_SIZE): build (all cores) unless `built` is
    given (a saved one, loaded), search one query at a time, recall@1."""
    index = built or NamespaceIndex(matrix.shape[1])
    started = time.perf_counter()
    if built is None:
        index.sync(keys, list(matrix))
    build = time.perf_counter() - started if built is None else float("nan")
    times, correct = [], 0
    for query, expected in zip(queries, truth, strict=True):
        begun = time.perf_counter()
        found = index.search(query, k=1)
        times.append(time.perf_counter() - begun)
        correct += found[0][0] == keys[int(expected)]
    return {
        "build_s": build,
        "bytes_per_entry": index.memory_bytes / len(keys),
        "p50_ms": ms(times, 50),
        "p99_ms": ms(times, 99),
        "recall": correct / len(queries),
    }, index


def expansion_sweep(
    index: NamespaceIndex,
    keys: list[str],
    queries: Matrix,
    truth: npt.NDArray[np.int64],
    expansions: list[int],
) -> list[str]:
    """Report rows: recall@1 and single-query search time of `index` at each efSearch (the
    index is left at its own efSearch afterwards)."""
    shipped, rows = index.expansion_search, []
    for expansion in expansions:
        index.expansion_search = expansion
        result, _ = bench_usearch(keys, np.empty((0, 0), np.float32), queries, truth, index)
        rows.append(
            f"| {len(keys):,}: usearch at efSearch {expansion}: recall@1 / search p50 / p99 "
            f"(ms) | {result['recall']:.4f} / {result['p50_ms']:.3f} / {result['p99_ms']:.3f} |"
        )
    index.expansion_search = shipped
    return rows


def bench_faiss(matrix: Matrix, queries: Matrix, truth: npt.NDArray[np.int64]) -> dict[str, float]:
    """faiss-cpu IndexHNSWFlat (inner product on unit vectors = cosine), same parameters."""
    import faiss

    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(matrix.shape[1], CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EXPANSION_ADD
    index.hnsw.efSearch = EXPANSION_SEARCH
    started = time.perf_counter()
    index.add(matrix)
    build = time.perf_counter() - started
    size = len(faiss.serialize_index(index))
    faiss.omp_set_num_threads(1)
    times, correct = [], 0
    for query, expected in zip(queries, truth, strict=True):
        begun = time.perf_counter()
        _, found = index.search(query[None, :], 1)
        times.append(time.perf_counter() - begun)
        correct += int(found[0, 0]) == int(expected)
    return {
        "build_s": build,
        "bytes_per_entry": size / len(matrix),
        "p50_ms": ms(times, 50),
        "p99_ms": ms(times, 99),
        "recall": correct / len(queries),
    }


def write_sqlite(path: Path, keys: list[str], texts: list[str], matrix: Matrix) -> None:
    """The cache's SQLite file with these entries (the service's own schema, bulk insert)."""
    from ponder_embedding.cache.sqlite_backend import _SCHEMA

    now = time.time()
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    db.execute("PRAGMA journal_mode=WAL")
    payload = b"x" * 256
    with db:
        for start in range(0, len(keys), 50_000):
            db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        key,
                        NAMESPACE,
                        text,
                        payload,
                        "bench",
                        vector.astype("<f4").tobytes(),
                        now,
                        now + 30 * 86400,
                        0,
                        now,
                    )
                    for key, text, vector in zip(
                        keys[start : start + 50_000],
                        texts[start : start + 50_000],
                        matrix[start : start + 50_000],
                        strict=True,
                    )
                ),
            )
    db.close()


async def run_service(
    cache_path: Path,
    entries: int,
    work: Callable[[str, int], Awaitable[Any]],
    extra_env: dict[str, str] | None = None,
) -> tuple[float, Any]:
    """Start the embedding service on `cache_path`; (seconds to SERVING, work(address, pid))."""
    env = {
        # lookups are direct calls to an internal service: they carry the stack's token
        "PONDER_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "PONDER_CACHE_PATH": str(cache_path),
        "PONDER_CACHE_MAX_ENTRIES": str(entries + 1000),
        "PONDER_LOG_LEVEL": "WARNING",
        "PONDER_EMBEDDING_BACKEND": "onnx",
        **(extra_env or {}),
    }
    started = time.perf_counter()
    async with only_service(
        "embedding", cache_path.parent / "logs", env, timeout=1800, stop_timeout=600
    ) as (address, pid):
        ready = time.perf_counter() - started
        return ready, await work(address, pid)


async def lookups(
    address: str, texts: list[str], model: EmbeddingModel | None = None
) -> tuple[list[float], int, list[float]]:
    """Seconds per LookupCache of each text, how many hit (threshold 0.8), and, with `model`,
    seconds per raw single-query encode of the same text right before each lookup (the two
    interleaved, so both meet the same load on a shared machine)."""
    times, hits, raw = [], 0, []
    # As the gateway calls it: the internal token, and the W3C traceparent its channel sends
    # on every call (so the service continues that trace and sends no x-trace-id back).
    token = (
        (INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN),
        ("traceparent", f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"),
    )
    async with grpc.aio.insecure_channel(address) as channel:
        stub = embedding_grpc.EmbeddingServiceStub(channel)
        for text in ("warm up", *texts[:20]):
            await stub.LookupCache(
                pb.LookupCacheRequest(namespace=NAMESPACE, text=text), metadata=token
            )
            if model is not None:
                await model.encode([text])
        for text in texts:
            if model is not None:
                started = time.perf_counter()
                await model.encode([text])  # on the model's thread, as the service does
                raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            reply = await stub.LookupCache(
                pb.LookupCacheRequest(namespace=NAMESPACE, text=text, similarity_threshold=0.8),
                metadata=token,
            )
            times.append(time.perf_counter() - started)
            hits += reply.hit
    return times, hits, raw


async def bench_rss(
    root: Path, model: EmbeddingModel, entries: int, before_src: Path | None
) -> list[str]:
    """Service RSS with `entries` entries: this code, and the previous code when given."""
    questions, _ = real_texts()
    real = normalize(await model.encode(questions[:200]))
    matrix = synthesize(real, entries)
    texts = questions[:200] + [f"synthetic question {i}" for i in range(entries - 200)]
    keys = [entry_key(NAMESPACE, text) for text in texts]
    rows: list[str] = []

    async def measure(address: str, pid: int) -> float:
        await lookups(address, questions[:50])
        return rss_mib(pid)

    runs: list[tuple[str, Path | None]] = [("this code (ONNX Runtime, no torch)", None)]
    if before_src is not None:
        runs.insert(0, ("previous code (ONNX Runtime, torch loaded)", before_src))
    for label, src in runs:
        path = root / f"rss-{len(rows)}.sqlite3"
        write_sqlite(path, keys, texts, matrix)
        env: dict[str, str] = {"PYTHONPATH": str(src)} if src else {}
        _, rss = await run_service(path, entries, measure, env)
        rows.append(f"| {entries:,} entries: service RSS, {label} (MiB) | {rss:.0f} |")
    return rows


class Data:
    """The N vectors (real, perturbed, random), their keys and texts, and the queries."""

    def __init__(self, real: Matrix, questions: list[str], entries: int) -> None:
        self.matrix = synthesize(real, entries)
        self.texts = questions + [f"synthetic question {i}" for i in range(entries - len(real))]
        self.keys = [entry_key(NAMESPACE, text) for text in self.texts]
        self.real = len(real)


async def make_data(
    model: EmbeddingModel, entries: int, queries: int
) -> tuple[Data, list[str], Matrix, list[str]]:
    """The data set, the paraphrase queries (texts and vectors) and a report row."""
    started = time.perf_counter()
    questions, paraphrases = real_texts()
    real = normalize(
        np.vstack([await model.encode(questions[i : i + 64]) for i in range(0, len(questions), 64)])
    )
    pick = np.random.default_rng(11).choice(len(paraphrases), queries, replace=False)
    query_texts = [paraphrases[int(i)] for i in pick]
    query_vectors = normalize(await model.encode(query_texts))
    data = Data(real, questions, entries)
    rest = entries - data.real
    row = (
        f"| data: {entries:,} vectors ({data.real:,} real, {rest // 2:,} perturbed, "
        f"{rest - rest // 2:,} random), {queries} real-model paraphrase queries; made in (s) "
        f"| {time.perf_counter() - started:.0f} |"
    )
    return data, query_texts, query_vectors, [row]


def candidate_rows(results: dict[str, dict[str, float]]) -> list[str]:
    """Report rows of the index candidates."""
    lines = []
    for name, r in results.items():
        build = "reused (loaded)" if np.isnan(r["build_s"]) else f"{r['build_s']:.0f}"
        lines += [
            f"| {name}: build with 2 threads (s) | {build} |",
            f"| {name}: index memory per entry (bytes) | {r['bytes_per_entry']:.0f} |",
            f"| {name}: single-query search p50 / p99 (ms) | "
            f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} |",
            f"| {name}: **recall@1 vs exact** (target ≥ 0.99) | **{r['recall']:.4f}** |",
        ]
    return lines


async def service_rows(
    model: EmbeddingModel,
    cache_path: Path,
    entries: int,
    query_texts: list[str],
    *,
    rebuild: bool,
    expansions: list[int],
    threads: list[int],
) -> list[str]:
    """The service on the N-entry cache: restart time, RSS, lookups vs raw encode (interleaved),
    once per efSearch in `expansions` and search threads in `threads` (the first run gives the
    restart and memory rows)."""

    async def serve(address: str, pid: int) -> tuple[list[float], int, list[float], float]:
        times, hits, raw = await lookups(address, query_texts, model)
        return times, hits, raw, rss_mib(pid)

    lines: list[str] = []
    for expansion, thread_count in itertools.product(expansions, threads):
        restart, (times, hits, raw, rss) = await run_service(
            cache_path,
            entries,
            serve,
            {
                "PONDER_CACHE_INDEX_EXPANSION_SEARCH": str(expansion),
                "PONDER_CACHE_INDEX_SEARCH_THREADS": str(thread_count),
            },
        )
        p50, p99, raw50, raw99 = ms(times, 50), ms(times, 99), ms(raw, 50), ms(raw, 99)
        if not lines:
            lines += [
                f"| service restart with the saved index, to SERVING (s) | {restart:.1f} |",
                f"| service RSS with {entries:,} entries (MiB) | {rss:.0f} |",
                f"| service memory per entry (RSS / entries, bytes) | "
                f"{rss * 2**20 / entries:.0f} |",
            ]
        shipped = expansion == EXPANSION_SEARCH and thread_count == SEARCH_THREADS
        ef = f"efSearch {expansion}, {thread_count} thread(s){' (shipped)' if shipped else ''}"
        lines += [
            f"| {ef}: raw ONNX single-query encode p50 / p99 (ms) | {raw50:.2f} / {raw99:.2f} |",
            f"| {ef}: LookupCache paraphrase p50 / p99 (ms) | {p50:.2f} / {p99:.2f} |",
            f"| {ef}: **paraphrase lookup / raw encode** p50 (target ≤ 2) / p99 | "
            f"**{p50 / raw50:.2f}** / {p99 / raw99:.2f} |",
            f"| {ef}: paraphrase lookups that hit at threshold 0.8 | {hits / len(times):.0%} |",
        ]
    if rebuild:
        for saved in cache_path.with_name(cache_path.name + ".index").glob("*.usearch"):
            saved.unlink()

        async def nothing(address: str, pid: int) -> None:
            return None

        seconds, _ = await run_service(cache_path, entries, nothing)
        lines.append(
            f"| service restart without an index file (rebuilt from stored vectors) (s) "
            f"| {seconds:.1f} |"
        )
    return lines


def compare_on_subset(data: Data, queries: Matrix, compare: int) -> dict[str, dict[str, float]]:
    """Both candidates on the first `compare` vectors (none when that is all of them)."""
    if compare >= len(data.keys):
        return {}
    subset, keys = data.matrix[:compare], data.keys[:compare]
    subset_truth = exact_top1(subset, queries)
    results = {
        f"{compare:,}: usearch (HNSW f16 segments: the cache's index)": bench_usearch(
            keys, subset, queries, subset_truth
        )[0],
        f"{compare:,}: faiss-cpu (IndexHNSWFlat f32)": bench_faiss(subset, queries, subset_truth),
    }
    gc.collect()
    return results


def _kept_params(entries: int) -> dict[str, int]:
    """What kept files were made with: reused only when this code would make the same."""
    return {
        "entries": entries,
        "connectivity": CONNECTIVITY,
        "expansion_add": EXPANSION_ADD,
        "segment_size": SEGMENT_SIZE,
        "data": DATA_VERSION,
    }


def kept_files(work_dir: Path, entries: int) -> tuple[Path, bool]:
    """The kept cache file for `entries` under `work_dir`, and whether it (with its index)
    matches this code's index parameters and can be reused."""
    folder = work_dir / f"scale-{entries}"
    folder.mkdir(parents=True, exist_ok=True)
    cache_path = folder / "cache.sqlite3"
    params = folder / "params.json"
    reusable = (
        cache_path.exists()
        and params.exists()
        and json.loads(params.read_text()) == _kept_params(entries)
        and any(folder.glob("cache.sqlite3.index/*.usearch"))
    )
    if not reusable:
        params.unlink(missing_ok=True)
        for old in [cache_path, *folder.glob("cache.sqlite3*"), *folder.glob("*/*.usearch")]:
            if old.is_file():
                old.unlink()
    return cache_path, reusable


def mark_kept(cache_path: Path, entries: int) -> None:
    """Record that the files beside `cache_path` are complete (written last)."""
    (cache_path.parent / "params.json").write_text(json.dumps(_kept_params(entries)))


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument(
        "--compare-entries",
        type=int,
        default=100_000,
        help="both candidates are compared on the first this-many vectors (0: on all N)",
    )
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--rebuild-restart", action="store_true")
    parser.add_argument("--rss-entries", type=int, default=10_000)
    parser.add_argument("--before-src", type=Path, default=None)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--recall-expansions",
        type=int,
        nargs="*",
        default=[],
        help="also measure the N-entry index's recall@1 and search time at these efSearch",
    )
    parser.add_argument(
        "--service-expansions",
        type=int,
        nargs="+",
        default=[EXPANSION_SEARCH],
        help="run the service part once per efSearch (PONDER_CACHE_INDEX_EXPANSION_SEARCH)",
    )
    parser.add_argument(
        "--service-threads",
        type=int,
        nargs="+",
        default=[SEARCH_THREADS],
        help="... and per search thread count (PONDER_CACHE_INDEX_SEARCH_THREADS)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the N-entry cache and index in --work-dir and reuse them on a later run",
    )
    args = parser.parse_args()
    if args.keep and (args.work_dir is None or args.rebuild_restart):
        parser.error("--keep needs --work-dir and excludes --rebuild-restart")
    return args


async def main() -> None:
    args = parse_args()
    model = await EmbeddingModel.load(ModelOptions(device="cpu", backend="onnx"))
    data, query_texts, queries, lines = await make_data(model, args.entries, args.queries)
    lines = ["| measurement | value |", "|---|---|", *lines]
    compare = min(args.compare_entries or args.entries, args.entries)
    results = compare_on_subset(data, queries, compare) if not args.skip_faiss else {}
    truth = exact_top1(data.matrix, queries)
    with contextlib.ExitStack() as cleanup:
        if args.keep:
            cache_path, reuse = kept_files(args.work_dir, args.entries)
        else:
            tmp = cleanup.enter_context(tempfile.TemporaryDirectory(dir=args.work_dir))
            cache_path, reuse = Path(tmp) / "cache.sqlite3", False
        files = IndexFiles(cache_path.with_name(cache_path.name + ".index"), data.matrix.shape[1])
        index_prefix = files.path(NAMESPACE)
        assert index_prefix is not None
        saved = NamespaceIndex.load(index_prefix, data.matrix.shape[1]) if reuse else None
        if saved is not None:
            added, removed = saved.sync(data.keys, list(data.matrix))
            lines.append(
                f"| saved index reused: entries added / removed on load | {added} / {removed} |"
            )
        usearch, index = bench_usearch(data.keys, data.matrix, queries, truth, saved)
        results[f"{args.entries:,}: usearch (HNSW f16 segments: the cache's index)"] = usearch
        sweep = expansion_sweep(index, data.keys, queries, truth, args.recall_expansions)
        if saved is None:
            files.save({NAMESPACE: index})
        segments, segment_files = index.segments, list(index_prefix.parent.glob("*.usearch"))
        del index, saved
        gc.collect()
        if compare == args.entries and not args.skip_faiss:
            results[f"{args.entries:,}: faiss-cpu (IndexHNSWFlat f32)"] = bench_faiss(
                data.matrix, queries, truth
            )
        lines += candidate_rows(results) + sweep
        lines.append(
            f"| usearch index files for {args.entries:,} entries ({segments} segments) (MiB) | "
            f"{sum(file.stat().st_size for file in segment_files) / 2**20:.0f} |"
        )
        print("\n".join(lines), flush=True)  # the candidates, in case the service part fails
        if not args.skip_service:
            if not reuse:
                write_sqlite(cache_path, data.keys, data.texts, data.matrix)
            if args.keep:
                mark_kept(cache_path, args.entries)
            del data
            gc.collect()
            lines += await service_rows(
                model,
                cache_path,
                args.entries,
                query_texts,
                rebuild=args.rebuild_restart,
                expansions=args.service_expansions,
                threads=args.service_threads,
            )
        if args.rss_entries:
            rss_dir = cleanup.enter_context(tempfile.TemporaryDirectory(dir=args.work_dir))
            lines += await bench_rss(Path(rss_dir), model, args.rss_entries, args.before_src)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"| benchmark process peak RSS (MiB) | {peak:.0f} |")
    model.close()
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
