"""Concurrent fan-out over sources with per-source timeouts, statuses, dedupe and ranking."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.sources import Source, SourceDisabledError


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


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Documents (deduplicated, best first) and what happened to each source."""

    documents: list[FoundDocument]
    outcomes: list[SourceOutcome]
    duplicates_removed: int


class AllSourcesFailedError(Exception):
    """Every requested source failed or was disabled."""

    def __init__(self, outcomes: Sequence[SourceOutcome]) -> None:
        reasons = "; ".join(f"{o.source.value}: {o.state.value} ({o.message})" for o in outcomes)
        super().__init__(f"every source failed: {reasons}")
        self.outcomes = list(outcomes)


async def _search_one(
    source: Source, query: str, limit: int, timeout: float
) -> tuple[list[FoundDocument], SourceOutcome]:
    started = time.perf_counter()

    def outcome(state: SourceState, count: int = 0, message: str = "") -> SourceOutcome:
        return SourceOutcome(source.kind, state, time.perf_counter() - started, count, message)

    try:
        async with asyncio.timeout(timeout):
            found = await source.search(query, limit)
    except TimeoutError:
        return [], outcome(SourceState.TIMEOUT, message=f"no answer within {timeout:.1f}s")
    except SourceDisabledError as exc:
        return [], outcome(SourceState.DISABLED, message=str(exc))
    except Exception as exc:
        logger.warning("source failed", extra={"source": source.kind.value, "error": repr(exc)})
        return [], outcome(SourceState.ERROR, message=f"{type(exc).__name__}: {exc}")
    return found, outcome(SourceState.OK, len(found))


def _dedupe(documents: Sequence[FoundDocument]) -> tuple[list[FoundDocument], int]:
    """Merge documents with the same normalised title (the same paper from two sources);
    keep the best score and record every source it came from."""
    merged: dict[str, FoundDocument] = {}
    removed = 0
    for doc in documents:
        key = " ".join(doc.title.lower().split()) or doc.id
        kept = merged.get(key)
        if kept is None:
            merged[key] = doc
            continue
        removed += 1
        found_in = tuple(dict.fromkeys((*kept.found_in, *doc.found_in)))
        best = doc if doc.score > kept.score else kept
        merged[key] = replace(best, found_in=found_in)
    return list(merged.values()), removed


async def search_sources(
    sources: Mapping[SourceKind, Source],
    query: str,
    requested: Sequence[SourceKind],
    *,
    max_results: int,
    timeout: float,
) -> SearchResult:
    """Search the requested sources concurrently; fail only when every one of them failed."""
    kinds = list(dict.fromkeys(requested)) or list(sources)
    tasks = [_search_one(sources[kind], query, max_results, timeout) for kind in kinds]
    results = await asyncio.gather(*tasks)
    outcomes = [outcome for _, outcome in results]
    if all(outcome.state is not SourceState.OK for outcome in outcomes):
        raise AllSourcesFailedError(outcomes)
    documents, removed = _dedupe([doc for found, _ in results for doc in found])
    documents.sort(key=lambda doc: -doc.score)
    return SearchResult(documents[:max_results], outcomes, removed)
