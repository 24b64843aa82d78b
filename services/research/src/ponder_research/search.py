"""A search: every requested source concurrently (each under its own timeout, through the
source cache), then dedupe across sources, then rerank against the query."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from opentelemetry import trace
from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.trace import StatusCode, Tracer

from ponder_research.dedupe import dedupe
from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.embedder import Embedder
from ponder_research.library import LibrarySource
from ponder_research.ranking import Ranking, rerank
from ponder_research.source_cache import SourceCache
from ponder_research.sources import Query, Source, SourceDisabledError
from ponder_runtime.attributes import SOURCE, SOURCE_CACHED, SOURCE_RESULTS, SOURCE_STATE
from ponder_runtime.metrics import SOURCE_DURATION


logger = logging.getLogger(__name__)


class SourceState(enum.Enum):
    """What happened to one source (mirrors ponder.research.v1.SourceState)."""

    OK = "ok"
    TIMEOUT = "timeout"
    ERROR = "error"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """Status of one source after a search."""

    source: SourceKind
    state: SourceState
    latency_s: float
    result_count: int
    message: str = ""
    cached: bool = False


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Documents (deduplicated, ranked, best first) and what happened to each source."""

    documents: list[FoundDocument]
    outcomes: list[SourceOutcome]
    duplicates_removed: int
    ranking: Ranking = Ranking.SOURCE_ORDER
    ranking_note: str = ""


class AllSourcesFailedError(Exception):
    """Every requested source failed or was disabled."""

    def __init__(self, outcomes: Sequence[SourceOutcome]) -> None:
        reasons = "; ".join(f"{o.source.value}: {o.state.value} ({o.message})" for o in outcomes)
        super().__init__(f"every source failed: {reasons}")
        self.outcomes = list(outcomes)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _content_version(source: Source) -> str:
    """The library's version (cached results of an older library are not served); "" for
    other sources."""
    return source.index.version if isinstance(source, LibrarySource) else ""


class Searcher:
    """Runs searches over a fixed set of sources."""

    def __init__(
        self,
        sources: Mapping[SourceKind, Source],
        *,
        cache: SourceCache,
        embedding: Embedder | None,
        tracer: Tracer | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.sources = sources
        self._cache = cache
        self._embedding = embedding
        self._tracer = tracer or trace.NoOpTracer()
        self._duration = (meter or NoOpMeter(__name__)).create_histogram(
            SOURCE_DURATION, unit="s", description="Source searches by source and outcome."
        )

    async def _one(
        self, source: Source, query: Query, timeout: float
    ) -> tuple[list[FoundDocument], SourceOutcome]:
        """One source, in a span of its own saying how it went."""
        with self._tracer.start_as_current_span(
            f"source {source.kind.value}", attributes={SOURCE: source.kind.value}
        ) as span:
            found, outcome = await self._search_one(source, query, timeout)
            span.set_attributes(
                {
                    SOURCE_STATE: outcome.state.value,
                    SOURCE_RESULTS: outcome.result_count,
                    SOURCE_CACHED: outcome.cached,
                }
            )
            if outcome.state in (SourceState.TIMEOUT, SourceState.ERROR):
                span.set_status(StatusCode.ERROR, outcome.message)
            self._duration.record(
                outcome.latency_s,
                {SOURCE: source.kind.value, SOURCE_STATE: outcome.state.value},
            )
            return found, outcome

    async def _search_one(
        self, source: Source, query: Query, timeout: float
    ) -> tuple[list[FoundDocument], SourceOutcome]:
        started = time.perf_counter()

        def outcome(
            state: SourceState, count: int = 0, message: str = "", cached: bool = False
        ) -> SourceOutcome:
            elapsed = time.perf_counter() - started
            return SourceOutcome(source.kind, state, elapsed, count, message, cached)

        try:
            async with asyncio.timeout(timeout):
                key = query.for_source(source.kind == SourceKind.LIBRARY)
                found, cached = await self._cache.get(
                    (source.kind, key, _content_version(source)), lambda: source.search(query)
                )
        except TimeoutError:
            return [], outcome(SourceState.TIMEOUT, message=f"no answer within {timeout:.2f}s")
        except SourceDisabledError as exc:
            return [], outcome(SourceState.DISABLED, message=str(exc))
        except Exception as exc:
            logger.warning("source failed", extra={"source": source.kind.value, "error": repr(exc)})
            return [], outcome(SourceState.ERROR, message=_describe(exc))
        ranked = [replace(doc, source_rank=rank) for rank, doc in enumerate(found)]
        return ranked, outcome(SourceState.OK, len(found), cached=cached)

    async def search(
        self, query: Query, kinds: Sequence[SourceKind], *, max_results: int, timeout: float
    ) -> SearchResult:
        """Search `kinds` (all sources when empty); fail only when every one of them failed."""
        wanted = list(dict.fromkeys(kinds)) or list(self.sources)
        results = await asyncio.gather(
            *(self._one(self.sources[kind], query, timeout) for kind in wanted)
        )
        outcomes = [outcome for _, outcome in results]
        if all(outcome.state is not SourceState.OK for outcome in outcomes):
            raise AllSourcesFailedError(outcomes)
        merged, removed = await dedupe(
            [doc for found, _ in results for doc in found], self._embedding
        )
        ranked = await rerank(query.text, merged, self._embedding, kinds=wanted)
        return SearchResult(
            ranked.documents[:max_results], outcomes, removed, ranked.method, ranked.note
        )
