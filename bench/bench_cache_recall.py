"""Recall@1 and search time of a saved cache index at several search expansions (efSearch).

Usage: nice .venv/bin/python bench/bench_cache_recall.py CACHE.sqlite3 INDEX_PREFIX
       [--queries 400] [--expansions 64 128 256 512]

Reads every entry's vector from the cache's SQLite file (as bench_cache_scale.py wrote it),
loads the saved segments (INDEX_PREFIX-<n>.usearch, no rebuild), embeds the same paraphrase
queries with the real model and compares the index's top-1 with exact search (float32
matrix product) at each expansion.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from pathlib import Path

import numpy as np

from bench.bench_cache_scale import exact_top1, real_texts
from ponder_devstack.measure import ms
from ponder_embedding.cache.index import NamespaceIndex
from ponder_embedding.model import EmbeddingModel, ModelOptions, normalize


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cache", type=Path)
    parser.add_argument("index", type=Path)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--expansions", type=int, nargs="+", default=[64, 128, 256, 512])
    args = parser.parse_args()
    db = sqlite3.connect(f"file:{args.cache}?mode=ro", uri=True)
    rows = db.execute("SELECT key, vector FROM entries").fetchall()
    keys = [str(key) for key, _ in rows]
    matrix = np.frombuffer(b"".join(vector for _, vector in rows), dtype="<f4").reshape(
        len(rows), -1
    )
    del rows
    model = await EmbeddingModel.load(ModelOptions(device="cpu", backend="onnx"))
    _, paraphrases = real_texts()
    pick = np.random.default_rng(11).choice(len(paraphrases), args.queries, replace=False)
    queries = normalize(await model.encode([paraphrases[int(i)] for i in pick]))
    model.close()
    truth = exact_top1(matrix, queries)
    index = NamespaceIndex.load(args.index, matrix.shape[1])
    assert index is not None
    added, removed = index.sync(keys, list(matrix))
    print(f"| {len(keys):,} entries; graph loaded (added {added}, removed {removed}) | |")
    print("| efSearch | recall@1 vs exact | search p50 / p99 (ms) |")
    print("|---|---|---|")
    for expansion in args.expansions:
        index.expansion_search = expansion
        times, correct = [], 0
        for query, expected in zip(queries, truth, strict=True):
            started = time.perf_counter()
            found = index.search(query, k=1)
            times.append(time.perf_counter() - started)
            correct += found[0][0] == keys[int(expected)]
        print(
            f"| {expansion} | {correct / len(queries):.4f} | "
            f"{ms(times, 50):.3f} / {ms(times, 99):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
