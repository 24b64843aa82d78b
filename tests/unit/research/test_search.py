"""search_sources: concurrent fan-out, per-source statuses, failure rules, dedupe and ranking."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.search import (
    AllSourcesFailedError,
    SourceOutcome,
    SourceState,
    search_sources,
)
from ponder_research.sources import Source, SourceDisabledError, UnconfiguredSource


def _doc(doc_id: str, title: str, score: float, kind: SourceKind) -> FoundDocument:
    return FoundDocument(
        id=doc_id, title=title, summary="s", source=kind, score=score, found_in=(kind,)
    )


@dataclass
class ListSource:
    """Returns fixed documents and records the limits it was asked for."""

    kind: SourceKind
    documents: list[FoundDocument]
    limits: list[int] = field(default_factory=list)

    async def search(self, query: str, limit: int) -> list[FoundDocument]:
        """The fixed documents, at most `limit`."""
        self.limits.append(limit)
        return self.documents[:limit]


@dataclass
class HangingSource:
    """Never answers (until cancelled by the timeout)."""

    kind: SourceKind
    cancelled: bool = False

    async def search(self, query: str, limit: int) -> list[FoundDocument]:
        """Wait forever."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return []


@dataclass
class FailingSource:
    """Raises the given exception."""

    kind: SourceKind
    error: Exception

    async def search(self, query: str, limit: int) -> list[FoundDocument]:
        """Raise."""
        raise self.error


def _by_kind(outcomes: list[SourceOutcome]) -> dict[SourceKind, SourceOutcome]:
    return {outcome.source: outcome for outcome in outcomes}


class TestSourceStates:
    async def test_ok_timeout_error_disabled(self) -> None:
        """One OK, one slow (TIMEOUT), one raising (ERROR); DISABLED from SourceDisabledError."""
        hanging = HangingSource(SourceKind.ARXIV)
        sources: dict[SourceKind, Source] = {
            SourceKind.LIBRARY: ListSource(
                SourceKind.LIBRARY, [_doc("library:1", "Attention", 2.0, SourceKind.LIBRARY)]
            ),
            SourceKind.ARXIV: hanging,
            SourceKind.WEB: FailingSource(SourceKind.WEB, ConnectionError("tavily is down")),
        }
        started = time.perf_counter()
        result = await search_sources(
            sources,
            "attention",
            [SourceKind.LIBRARY, SourceKind.ARXIV, SourceKind.WEB],
            max_results=5,
            timeout=0.05,
        )
        assert time.perf_counter() - started < 1
        assert [doc.id for doc in result.documents] == ["library:1"]
        assert [outcome.source for outcome in result.outcomes] == [
            SourceKind.LIBRARY,
            SourceKind.ARXIV,
            SourceKind.WEB,
        ]
        outcomes = _by_kind(result.outcomes)
        assert outcomes[SourceKind.LIBRARY].state is SourceState.OK
        assert outcomes[SourceKind.LIBRARY].result_count == 1
        assert outcomes[SourceKind.ARXIV].state is SourceState.TIMEOUT
        assert outcomes[SourceKind.ARXIV].message == "no answer within 0.1s"
        assert outcomes[SourceKind.ARXIV].latency_s >= 0.05
        assert hanging.cancelled
        assert outcomes[SourceKind.WEB].state is SourceState.ERROR
        assert outcomes[SourceKind.WEB].message == "ConnectionError: tavily is down"
        assert outcomes[SourceKind.WEB].result_count == 0

    async def test_disabled_source(self) -> None:
        """A SourceDisabledError is reported as DISABLED with its message."""
        sources: dict[SourceKind, Source] = {
            SourceKind.LIBRARY: ListSource(SourceKind.LIBRARY, []),
            SourceKind.WEB: FailingSource(SourceKind.WEB, SourceDisabledError("no API key")),
            SourceKind.ARXIV: UnconfiguredSource(SourceKind.ARXIV, "not in this build"),
        }
        result = await search_sources(sources, "q", [], max_results=5, timeout=1)
        outcomes = _by_kind(result.outcomes)
        assert outcomes[SourceKind.LIBRARY].state is SourceState.OK
        assert outcomes[SourceKind.LIBRARY].result_count == 0
        assert (outcomes[SourceKind.WEB].state, outcomes[SourceKind.WEB].message) == (
            SourceState.DISABLED,
            "no API key",
        )
        assert (outcomes[SourceKind.ARXIV].state, outcomes[SourceKind.ARXIV].message) == (
            SourceState.DISABLED,
            "not in this build",
        )

    async def test_sources_run_concurrently(self) -> None:
        """A source waiting for another one to start still finishes: they run together."""
        web_started = asyncio.Event()

        @dataclass
        class WaitsForWeb:
            kind: SourceKind = SourceKind.LIBRARY

            async def search(self, query: str, limit: int) -> list[FoundDocument]:
                """Answer only once the web source has started."""
                await web_started.wait()
                return [_doc("library:1", "One", 1.0, SourceKind.LIBRARY)]

        @dataclass
        class Web:
            kind: SourceKind = SourceKind.WEB

            async def search(self, query: str, limit: int) -> list[FoundDocument]:
                """Signal the start and answer."""
                web_started.set()
                return [_doc("web:2", "Two", 2.0, SourceKind.WEB)]

        sources: dict[SourceKind, Source] = {
            SourceKind.LIBRARY: WaitsForWeb(),
            SourceKind.WEB: Web(),
        }
        result = await search_sources(
            sources, "q", [SourceKind.LIBRARY, SourceKind.WEB], max_results=5, timeout=5
        )
        assert [o.state for o in result.outcomes] == [SourceState.OK, SourceState.OK]
        assert [doc.id for doc in result.documents] == ["web:2", "library:1"]

    async def test_all_failing_raises(self) -> None:
        """When no source is OK, AllSourcesFailedError lists every outcome."""
        sources: dict[SourceKind, Source] = {
            SourceKind.ARXIV: HangingSource(SourceKind.ARXIV),
            SourceKind.WEB: FailingSource(SourceKind.WEB, RuntimeError("boom")),
            SourceKind.LIBRARY: FailingSource(SourceKind.LIBRARY, SourceDisabledError("off")),
        }
        with pytest.raises(AllSourcesFailedError) as caught:
            await search_sources(sources, "q", [], max_results=5, timeout=0.05)
        states = {o.source: o.state for o in caught.value.outcomes}
        assert states == {
            SourceKind.ARXIV: SourceState.TIMEOUT,
            SourceKind.WEB: SourceState.ERROR,
            SourceKind.LIBRARY: SourceState.DISABLED,
        }
        message = str(caught.value)
        assert message.startswith("every source failed: ")
        assert "web: error (RuntimeError: boom)" in message
        assert "library: disabled (off)" in message

    async def test_only_requested_sources_are_asked(self) -> None:
        """Sources not requested are not searched; repeated requests count once."""
        library = ListSource(SourceKind.LIBRARY, [])
        web = ListSource(SourceKind.WEB, [])
        sources: dict[SourceKind, Source] = {SourceKind.LIBRARY: library, SourceKind.WEB: web}
        result = await search_sources(
            sources, "q", [SourceKind.WEB, SourceKind.WEB], max_results=3, timeout=1
        )
        assert [o.source for o in result.outcomes] == [SourceKind.WEB]
        assert (library.limits, web.limits) == ([], [3])

    async def test_no_request_means_every_source(self) -> None:
        """An empty request searches every configured source."""
        sources: dict[SourceKind, Source] = {
            kind: ListSource(kind, []) for kind in (SourceKind.LIBRARY, SourceKind.WEB)
        }
        result = await search_sources(sources, "q", [], max_results=3, timeout=1)
        assert {o.source for o in result.outcomes} == {SourceKind.LIBRARY, SourceKind.WEB}


class TestDedupeAndRanking:
    async def test_same_title_merges_found_in_and_keeps_higher_score(self) -> None:
        """Documents with the same normalised title merge: higher score kept, found_in joined."""
        sources: dict[SourceKind, Source] = {
            SourceKind.LIBRARY: ListSource(
                SourceKind.LIBRARY,
                [
                    _doc("library:a", "Attention Is All You Need", 1.0, SourceKind.LIBRARY),
                    _doc("library:b", "BERT", 0.5, SourceKind.LIBRARY),
                ],
            ),
            SourceKind.ARXIV: ListSource(
                SourceKind.ARXIV,
                [_doc("arxiv:a", "  attention is ALL  you need ", 3.0, SourceKind.ARXIV)],
            ),
            SourceKind.WEB: ListSource(
                SourceKind.WEB,
                [_doc("web:a", "Attention is all you need", 2.0, SourceKind.WEB)],
            ),
        }
        result = await search_sources(
            sources,
            "q",
            [SourceKind.LIBRARY, SourceKind.ARXIV, SourceKind.WEB],
            max_results=10,
            timeout=1,
        )
        assert result.duplicates_removed == 2
        assert [doc.id for doc in result.documents] == ["arxiv:a", "library:b"]
        merged = result.documents[0]
        assert merged.score == 3.0
        assert merged.source is SourceKind.ARXIV
        assert merged.found_in == (SourceKind.LIBRARY, SourceKind.ARXIV, SourceKind.WEB)

    async def test_lower_score_duplicate_keeps_the_first(self) -> None:
        """A later duplicate with a lower score only adds its source to found_in."""
        sources: dict[SourceKind, Source] = {
            SourceKind.LIBRARY: ListSource(
                SourceKind.LIBRARY, [_doc("library:a", "RAG", 5.0, SourceKind.LIBRARY)]
            ),
            SourceKind.WEB: ListSource(SourceKind.WEB, [_doc("web:a", "rag", 1.0, SourceKind.WEB)]),
        }
        result = await search_sources(
            sources, "q", [SourceKind.LIBRARY, SourceKind.WEB], max_results=10, timeout=1
        )
        (doc,) = result.documents
        assert (doc.id, doc.score) == ("library:a", 5.0)
        assert doc.found_in == (SourceKind.LIBRARY, SourceKind.WEB)
        assert result.duplicates_removed == 1

    async def test_ranked_by_score_across_sources_and_cut(self) -> None:
        """Documents of all sources are sorted by score and cut to max_results."""
        sources: dict[SourceKind, Source] = {
            SourceKind.LIBRARY: ListSource(
                SourceKind.LIBRARY,
                [
                    _doc("library:1", "One", 1.0, SourceKind.LIBRARY),
                    _doc("library:4", "Four", 4.0, SourceKind.LIBRARY),
                ],
            ),
            SourceKind.WEB: ListSource(
                SourceKind.WEB,
                [
                    _doc("web:3", "Three", 3.0, SourceKind.WEB),
                    _doc("web:2", "Two", 2.0, SourceKind.WEB),
                ],
            ),
        }
        result = await search_sources(
            sources, "q", [SourceKind.LIBRARY, SourceKind.WEB], max_results=3, timeout=1
        )
        assert [doc.id for doc in result.documents] == ["library:4", "web:3", "web:2"]
        assert result.duplicates_removed == 0
