"""Benchmarks of the research service (issue 4), side by side in one run.

Usage: .venv/bin/python bench/bench_research.py [--repeats 5] [--searches 100]

1. Fan-out: three sources answering in 200 / 500 / 800 ms (the real arxiv and tavily-python
   clients against local stand-in servers, and the library behind an 800 ms delay): the
   search takes about the slowest source, not the sum (target ≤ 1.1x the slowest).
2. Repeated identical searches through gRPC with the source cache on vs off (sources at
   50 ms, reranking by the real embedding service). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import grpc
from pydantic import SecretStr

from ponder.research.v1 import research_service_pb2 as pb
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_devstack.fake_apis import Behaviour, serve_fake_arxiv, serve_fake_tavily
from ponder_embedding.service import EmbeddingModule
from ponder_embedding.settings import EmbeddingSettings
from ponder_research.arxiv_source import ArxivSource, RequestSpacing
from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.library import LibraryIndex, LibrarySource, load_library
from ponder_research.search import Searcher
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_research.source_cache import SourceCache
from ponder_research.sources import Query, Source
from ponder_research.web_source import WebSource
from ponder_runtime import ServiceServer, ServiceSettings, configure_telemetry, load_settings


def _sample_index() -> LibraryIndex:
    """The sample library, searched by keywords (no embedder)."""
    index = LibraryIndex()
    for file in load_library([]):
        file.add_to(index)
    return index


class Delayed:
    """A source that answers after a fixed delay (the library as a slow stand-in)."""

    def __init__(self, inner: Source, delay: float) -> None:
        self.kind = inner.kind
        self._inner = inner
        self._delay = delay

    async def search(self, query: Query) -> list[FoundDocument]:
        """Sleep, then search."""
        await asyncio.sleep(self._delay)
        return await self._inner.search(query)


async def bench_fan_out(repeats: int) -> list[str]:
    """Median wall time of a three-source search vs its slowest source."""
    arxiv, tavily = serve_fake_arxiv(), serve_fake_tavily()
    arxiv.behaviour, tavily.behaviour = Behaviour(latency=0.2), Behaviour(latency=0.5)
    try:
        sources: dict[SourceKind, Source] = {
            SourceKind.ARXIV: ArxivSource(
                f"{arxiv.base_url}/api/query", http_timeout=10, spacing=RequestSpacing(0)
            ),
            SourceKind.WEB: WebSource(
                SecretStr("tvly-bench"), api_base_url=tavily.base_url, timeout=10
            ),
            SourceKind.LIBRARY: Delayed(LibrarySource(_sample_index()), 0.8),
        }
        searcher = Searcher(sources, cache=SourceCache(ttl=0, max_entries=1), embedding=None)
        times = []
        for i in range(repeats):
            started = time.perf_counter()
            result = await searcher.search(
                Query(f"retrieval augmented generation {i}", 10), [], max_results=10, timeout=5
            )
            times.append(time.perf_counter() - started)
            assert all(o.state.value == "ok" for o in result.outcomes), result.outcomes
    finally:
        arxiv.close()
        tavily.close()
    median = statistics.median(times)
    return [
        "| fan-out: sources at 200 / 500 / 800 ms, sum of latencies (ms) | 1500 |",
        f"| fan-out: search wall time, median of {repeats} (ms) | {median * 1000:.0f} |",
        f"| **fan-out / slowest source** (target ≤ 1.1) | **{median / 0.8:.3f}** |",
    ]


async def _start(settings: ServiceSettings, module: type) -> ServiceServer:
    telemetry = configure_telemetry(settings)
    server = ServiceServer(settings, module(settings, telemetry), telemetry)
    await server.start()
    await server.mark_ready()
    return server


async def bench_cache(searches: int, root: Path) -> list[str]:
    """Identical searches per second through gRPC, source cache on vs off."""
    arxiv, tavily = serve_fake_arxiv(), serve_fake_tavily()
    arxiv.behaviour, tavily.behaviour = Behaviour(latency=0.05), Behaviour(latency=0.05)
    embedding = await _start(
        load_settings(EmbeddingSettings, port=0, cache_path=root / "cache.sqlite3"),
        EmbeddingModule,
    )
    rows = []
    try:
        for ttl in (300.0, 0.0):
            research = await _start(
                load_settings(
                    ResearchSettings,
                    port=0,
                    arxiv_api_url=f"{arxiv.base_url}/api/query",
                    arxiv_min_interval_seconds=0.0,
                    tavily_api_url=tavily.base_url,
                    tavily_api_key="tvly-bench",
                    embedding_addr=f"127.0.0.1:{embedding.port}",
                    index_path=root / "vectors.sqlite3",
                    source_cache_ttl_seconds=ttl,
                ),
                ResearchModule,
            )
            module = research.service
            assert isinstance(module, ResearchModule)
            await module.wait_indexed()
            before = len(arxiv.requests)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{research.port}") as channel:
                stub = research_grpc.ResearchServiceStub(channel)
                request = pb.SearchSourcesRequest(query="parameter-efficient fine-tuning")
                started = time.perf_counter()
                for _ in range(searches):
                    await stub.SearchSources(request, timeout=30)
                rate = searches / (time.perf_counter() - started)
            calls = len(arxiv.requests) - before
            await research.stop(0)
            label = "on (TTL 300 s)" if ttl else "off"
            rows.append(
                f"| {searches} identical searches, source cache {label}: searches/s "
                f"(arXiv calls) | {rate:.0f} ({calls}) |"
            )
    finally:
        await embedding.stop(0)
        arxiv.close()
        tavily.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--searches", type=int, default=100)
    args = parser.parse_args()
    lines = ["| measurement | value |", "|---|---|"]
    lines += await bench_fan_out(args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        lines += await bench_cache(args.searches, Path(tmp))
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
