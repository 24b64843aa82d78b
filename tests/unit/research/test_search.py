"""Searcher: concurrent fan-out through the source cache, per-source statuses, failure rules,
then dedupe and ranking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ponder_research.documents import FoundDocument, Passage, SourceKind
from ponder_research.embedding_client import EmbeddingClient
from ponder_research.library import LibraryIndex, LibrarySource
from ponder_research.ranking import Ranking
from ponder_research.search import (
    AllSourcesFailedError,
    Searcher,
    SourceOutcome,
    SourceState,
)
from ponder_research.source_cache import SourceCache
from ponder_research.sources import Query, Source, SourceDisabledError


ARXIV, WEB, LIBRARY = SourceKind.ARXIV, SourceKind.WEB, SourceKind.LIBRARY


def _doc(doc_id: str, title: str, score: float, kind: SourceKind) -> FoundDocument:
    return FoundDocument(
        id=doc_id, title=title, summary="s", source=kind, score=score, found_in=(kind,)
    )


@dataclass
class ListSource:
    """Returns fixed documents and records the queries it was asked."""

    kind: SourceKind
    documents: list[FoundDocument]
    queries: list[Query] = field(default_factory=list)

    async def search(self, query: Query) -> list[FoundDocument]:
        """The fixed documents, at most `query.limit`."""
        self.queries.append(query)
        return self.documents[: query.limit]


@dataclass
class HangingSource:
    """Answers only once released (the test releases it at the end)."""

    kind: SourceKind
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False

    async def search(self, query: Query) -> list[FoundDocument]:
        """Wait for the release."""
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return []


@dataclass
class FailingSource:
    """Raises the given exception."""

    kind: SourceKind
    error: Exception

    async def search(self, query: Query) -> list[FoundDocument]:
        """Raise."""
        raise self.error


@pytest.fixture
async def hanging() -> AsyncIterator[HangingSource]:
    """An arXiv source that hangs until the test is over."""
    source = HangingSource(ARXIV)
    yield source
    source.release.set()
    await asyncio.sleep(0)


def _searcher(
    sources: dict[SourceKind, Source], *, ttl: float = 0, embedding: EmbeddingClient | None = None
) -> Searcher:
    return Searcher(sources, cache=SourceCache(ttl=ttl, max_entries=10), embedding=embedding)


def _by_kind(outcomes: list[SourceOutcome]) -> dict[SourceKind, SourceOutcome]:
    return {outcome.source: outcome for outcome in outcomes}


class TestSourceStates:
    async def test_ok_timeout_error(self, hanging: HangingSource) -> None:
        """One OK, one slow (TIMEOUT), one raising (ERROR): statuses in request order, the
        OK source's documents returned, all within about the timeout."""
        sources: dict[SourceKind, Source] = {
            LIBRARY: ListSource(LIBRARY, [_doc("library:1", "Attention", 2.0, LIBRARY)]),
            ARXIV: hanging,
            WEB: FailingSource(WEB, ConnectionError("tavily is down")),
        }
        started = time.perf_counter()
        result = await _searcher(sources).search(
            Query("attention", 5), [LIBRARY, ARXIV, WEB], max_results=5, timeout=0.05
        )
        assert time.perf_counter() - started < 1
        assert [doc.id for doc in result.documents] == ["library:1"]
        assert [outcome.source for outcome in result.outcomes] == [LIBRARY, ARXIV, WEB]
        outcomes = _by_kind(result.outcomes)
        assert outcomes[LIBRARY].state is SourceState.OK
        assert outcomes[LIBRARY].result_count == 1
        assert outcomes[LIBRARY].cached is False
        assert outcomes[ARXIV].state is SourceState.TIMEOUT
        assert outcomes[ARXIV].message == "no answer within 0.05s"
        assert outcomes[ARXIV].latency_s >= 0.05
        assert outcomes[ARXIV].result_count == 0
        assert not hanging.cancelled  # the shared fetch outlives a timed-out waiter
        assert outcomes[WEB].state is SourceState.ERROR
        assert outcomes[WEB].message == "ConnectionError: tavily is down"
        assert outcomes[WEB].result_count == 0

    async def test_each_source_is_a_span_and_a_timed_outcome(self, hanging: HangingSource) -> None:
        """Per source: a span saying how it went (ERROR status on a timeout or a failure)
        and a `ponder.source.duration` point by source and state."""
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.trace import StatusCode

        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        reader = InMemoryMetricReader()
        searcher = Searcher(
            {
                LIBRARY: ListSource(LIBRARY, [_doc("library:1", "Attention", 2.0, LIBRARY)]),
                ARXIV: hanging,
                WEB: FailingSource(WEB, ConnectionError("tavily is down")),
            },
            cache=SourceCache(ttl=0, max_entries=10),
            embedding=None,
            tracer=provider.get_tracer("test"),
            meter=MeterProvider(metric_readers=[reader]).get_meter("test"),
        )
        await searcher.search(
            Query("attention", 5), [LIBRARY, ARXIV, WEB], max_results=5, timeout=0.05
        )
        by_name = {s.name: s for s in spans.get_finished_spans()}
        library, arxiv, web = (by_name[f"source {kind.value}"] for kind in (LIBRARY, ARXIV, WEB))
        assert dict(library.attributes or {}) == {
            "ponder.source": "library",
            "ponder.source.state": "ok",
            "ponder.source.results": 1,
            "ponder.source.cached": False,
        }
        assert library.status.status_code is StatusCode.UNSET
        assert (arxiv.attributes or {})["ponder.source.state"] == "timeout"
        assert arxiv.status.status_code is StatusCode.ERROR
        assert web.status.description == "ConnectionError: tavily is down"
        data = reader.get_metrics_data()
        assert data is not None
        points = {
            (p.attributes or {})["ponder.source"]: ((p.attributes or {})["ponder.source.state"], p)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "ponder.source.duration"
            for p in metric.data.data_points
        }
        assert {kind: state for kind, (state, _) in points.items()} == {
            "library": "ok",
            "arxiv": "timeout",
            "web": "error",
        }
        arxiv_point = points["arxiv"][1]
        assert isinstance(arxiv_point, HistogramDataPoint)
        assert arxiv_point.sum >= 0.05

    async def test_disabled_source(self) -> None:
        """A SourceDisabledError is reported as DISABLED with its message."""
        sources: dict[SourceKind, Source] = {
            LIBRARY: ListSource(LIBRARY, []),
            WEB: FailingSource(WEB, SourceDisabledError("no API key")),
        }
        result = await _searcher(sources).search(Query("q", 5), [], max_results=5, timeout=1)
        outcomes = _by_kind(result.outcomes)
        assert (outcomes[LIBRARY].state, outcomes[LIBRARY].result_count) == (SourceState.OK, 0)
        assert (outcomes[WEB].state, outcomes[WEB].message) == (SourceState.DISABLED, "no API key")

    async def test_error_without_message(self) -> None:
        """An exception without text is reported by its type name."""
        sources: dict[SourceKind, Source] = {
            LIBRARY: ListSource(LIBRARY, []),
            WEB: FailingSource(WEB, RuntimeError()),
        }
        result = await _searcher(sources).search(Query("q", 5), [], max_results=5, timeout=1)
        assert _by_kind(result.outcomes)[WEB].message == "RuntimeError"

    async def test_sources_run_concurrently(self) -> None:
        """A source waiting for another one to start still finishes: they run together."""
        web_started = asyncio.Event()

        @dataclass
        class WaitsForWeb:
            kind: SourceKind = LIBRARY

            async def search(self, query: Query) -> list[FoundDocument]:
                """Answer only once the web source has started."""
                await web_started.wait()
                return [_doc("library:1", "One", 1.0, LIBRARY)]

        @dataclass
        class Web:
            kind: SourceKind = WEB

            async def search(self, query: Query) -> list[FoundDocument]:
                """Signal the start and answer."""
                web_started.set()
                return [_doc("web:2", "Two", 2.0, WEB)]

        sources: dict[SourceKind, Source] = {LIBRARY: WaitsForWeb(), WEB: Web()}
        result = await _searcher(sources).search(
            Query("q", 5), [LIBRARY, WEB], max_results=5, timeout=5
        )
        assert [o.state for o in result.outcomes] == [SourceState.OK, SourceState.OK]
        assert {doc.id for doc in result.documents} == {"web:2", "library:1"}

    async def test_all_failing_raises(self, hanging: HangingSource) -> None:
        """When no source is OK, AllSourcesFailedError lists every outcome."""
        sources: dict[SourceKind, Source] = {
            ARXIV: hanging,
            WEB: FailingSource(WEB, RuntimeError("boom")),
            LIBRARY: FailingSource(LIBRARY, SourceDisabledError("off")),
        }
        with pytest.raises(AllSourcesFailedError) as caught:
            await _searcher(sources).search(Query("q", 5), [], max_results=5, timeout=0.05)
        states = {o.source: o.state for o in caught.value.outcomes}
        assert states == {
            ARXIV: SourceState.TIMEOUT,
            WEB: SourceState.ERROR,
            LIBRARY: SourceState.DISABLED,
        }
        message = str(caught.value)
        assert message.startswith("every source failed: ")
        assert "arxiv: timeout (no answer within 0.05s)" in message
        assert "web: error (RuntimeError: boom)" in message
        assert "library: disabled (off)" in message

    async def test_only_requested_sources_are_asked(self) -> None:
        """Sources not requested are not searched; repeated requests count once; each source
        gets the query (text, limit, domains) as given."""
        library = ListSource(LIBRARY, [])
        web = ListSource(WEB, [])
        sources: dict[SourceKind, Source] = {LIBRARY: library, WEB: web}
        query = Query("q", 3, include_domains=("arxiv.org",))
        result = await _searcher(sources).search(query, [WEB, WEB], max_results=3, timeout=1)
        assert [o.source for o in result.outcomes] == [WEB]
        assert (library.queries, web.queries) == ([], [query])

    async def test_no_request_means_every_source(self) -> None:
        """An empty request searches every configured source."""
        sources: dict[SourceKind, Source] = {kind: ListSource(kind, []) for kind in (LIBRARY, WEB)}
        result = await _searcher(sources).search(Query("q", 3), [], max_results=3, timeout=1)
        assert [o.source for o in result.outcomes] == [LIBRARY, WEB]


class TestCache:
    async def test_repeated_search_is_cached(self) -> None:
        """With a TTL, an identical search is answered from the cache (cached=True, no new
        upstream call); another query is not."""
        web = ListSource(WEB, [_doc("web:1", "One", 1.0, WEB)])
        searcher = _searcher({WEB: web}, ttl=60)
        first = await searcher.search(Query("q", 5), [WEB], max_results=5, timeout=1)
        second = await searcher.search(Query("q", 5), [WEB], max_results=5, timeout=1)
        other = await searcher.search(Query("other", 5), [WEB], max_results=5, timeout=1)
        assert [o.cached for o in first.outcomes] == [False]
        assert [o.cached for o in second.outcomes] == [True]
        assert [o.cached for o in other.outcomes] == [False]
        assert [q.text for q in web.queries] == ["q", "other"]
        assert [d.id for d in second.documents] == [d.id for d in first.documents] == ["web:1"]
        assert second.outcomes[0].result_count == 1

    async def test_library_change_is_not_hidden_by_the_cache(self) -> None:
        """A cached library search is not served once the library changed (removed
        document); searching the same library again is."""
        index = LibraryIndex()
        passage = Passage("library:a", 0, "quantum annealing schedules batch jobs", 0, 38)
        index.add("library:a", "a.md", "text/markdown", [passage], title="A")
        searcher = _searcher({LIBRARY: LibrarySource(index)}, ttl=60)
        query = Query("quantum annealing", 5)
        first = await searcher.search(query, [LIBRARY], max_results=5, timeout=1)
        again = await searcher.search(query, [LIBRARY], max_results=5, timeout=1)
        assert [d.id for d in first.documents] == ["library:a"]
        assert [o.cached for o in again.outcomes] == [True]
        index.remove("library:a")
        after = await searcher.search(query, [LIBRARY], max_results=5, timeout=1)
        assert [o.cached for o in after.outcomes] == [False]
        assert after.documents == []

    async def test_no_ttl_no_cache(self) -> None:
        """With ttl=0 an identical later search calls the source again."""
        web = ListSource(WEB, [])
        searcher = _searcher({WEB: web}, ttl=0)
        for _ in range(2):
            result = await searcher.search(Query("q", 5), [WEB], max_results=5, timeout=1)
            assert [o.cached for o in result.outcomes] == [False]
        assert len(web.queries) == 2

    async def test_concurrent_identical_searches_share_one_call(self) -> None:
        """Two identical searches at once reach the source once; the second is marked cached."""
        gate = asyncio.Event()

        @dataclass
        class Slow:
            kind: SourceKind = WEB
            calls: int = 0

            async def search(self, query: Query) -> list[FoundDocument]:
                """Wait for the gate."""
                self.calls += 1
                await gate.wait()
                return [_doc("web:1", "One", 1.0, WEB)]

        slow = Slow()
        searcher = _searcher({WEB: slow}, ttl=0)
        runs = [
            asyncio.create_task(searcher.search(Query("q", 5), [WEB], max_results=5, timeout=5))
            for _ in range(2)
        ]
        await asyncio.sleep(0.01)
        gate.set()
        first, second = await asyncio.gather(*runs)
        assert slow.calls == 1
        assert [first.outcomes[0].cached, second.outcomes[0].cached] == [False, True]


class TestDedupeAndRanking:
    async def test_same_title_merges_and_keeps_arxiv_metadata(self) -> None:
        """Documents with the same normalised title merge: the arXiv result's identity kept,
        found_in joined in request order, one duplicate counted per extra copy."""
        sources: dict[SourceKind, Source] = {
            LIBRARY: ListSource(
                LIBRARY,
                [
                    _doc("library:a", "Attention Is All You Need", 1.0, LIBRARY),
                    _doc("library:b", "BERT", 0.5, LIBRARY),
                ],
            ),
            ARXIV: ListSource(
                ARXIV, [_doc("arxiv:a", "  attention is ALL  you need ", 3.0, ARXIV)]
            ),
            WEB: ListSource(WEB, [_doc("web:a", "Attention is all you need", 2.0, WEB)]),
        }
        result = await _searcher(sources).search(
            Query("q", 10), [LIBRARY, ARXIV, WEB], max_results=10, timeout=1
        )
        assert result.duplicates_removed == 2
        assert result.ranking is Ranking.SOURCE_ORDER
        assert result.ranking_note == "no embedding service configured"
        assert [doc.id for doc in result.documents] == ["arxiv:a", "library:b"]
        merged = result.documents[0]
        assert merged.source is ARXIV
        assert merged.found_in == (LIBRARY, ARXIV, WEB)
        assert merged.source_rank == 0
        assert [o.result_count for o in result.outcomes] == [2, 1, 1]

    async def test_source_order_interleaves_and_cuts(self) -> None:
        """Without embeddings, sources interleave by rank in request order and the list is
        cut to max_results; scores are 1/(1 + rank)."""
        sources: dict[SourceKind, Source] = {
            LIBRARY: ListSource(
                LIBRARY,
                [_doc("library:1", "One", 1.0, LIBRARY), _doc("library:4", "Four", 4.0, LIBRARY)],
            ),
            WEB: ListSource(
                WEB, [_doc("web:3", "Three", 3.0, WEB), _doc("web:2", "Two", 2.0, WEB)]
            ),
        }
        result = await _searcher(sources).search(
            Query("q", 10), [WEB, LIBRARY], max_results=3, timeout=1
        )
        assert [doc.id for doc in result.documents] == ["web:3", "library:1", "web:2"]
        assert [doc.score for doc in result.documents] == [1.0, 1.0, 0.5]
        assert result.duplicates_removed == 0

    async def test_embedding_ranking(self, embedding_client: EmbeddingClient) -> None:
        """With the embedding service, documents are ordered by similarity to the query."""
        sources: dict[SourceKind, Source] = {
            LIBRARY: ListSource(
                LIBRARY,
                [
                    _doc("library:cooking", "A recipe for tomato soup", 9.0, LIBRARY),
                    _doc("library:dpr", "Dense passage retrieval for QA", 1.0, LIBRARY),
                ],
            ),
            WEB: ListSource(WEB, [_doc("web:gardening", "Pruning roses in spring", 5.0, WEB)]),
        }
        result = await _searcher(sources, embedding=embedding_client).search(
            Query("retrieving passages to answer questions", 10),
            [LIBRARY, WEB],
            max_results=2,
            timeout=5,
        )
        assert result.ranking is Ranking.EMBEDDING_SIMILARITY
        assert result.ranking_note == ""
        assert len(result.documents) == 2
        assert result.documents[0].id == "library:dpr"
        assert result.documents[0].score > result.documents[1].score
