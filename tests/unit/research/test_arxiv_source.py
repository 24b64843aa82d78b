"""ArxivSource with the real `arxiv` client against a local fake arXiv API (real sockets):
field mapping, HTTP timeout and status errors, malformed and empty feeds, request spacing."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import arxiv
import pytest
import requests

from ponder_devstack.fake_apis import FakeApi, sample_papers
from ponder_research import arxiv_source
from ponder_research.arxiv_source import (
    ArxivSource,
    MalformedFeedError,
    RequestSpacing,
    arxiv_query,
    short_id,
)
from ponder_research.documents import SourceKind
from ponder_research.sources import Query


DPR = "2004.04906"
DPR_QUERY = "dense passage retrieval for open-domain question answering"


def _source(api: FakeApi, *, http_timeout: float = 5.0, interval: float = 0.0) -> ArxivSource:
    return ArxivSource(
        f"{api.base_url}/api/query", http_timeout=http_timeout, spacing=RequestSpacing(interval)
    )


def _query_args(api: FakeApi, index: int = -1) -> dict[str, list[str]]:
    return parse_qs(urlsplit(api.requests[index][1]).query)


class TestMapping:
    async def test_fields_of_a_paper(self, arxiv_api: FakeApi) -> None:
        """Every field of an arXiv entry lands in the FoundDocument; the id has no version."""
        record = next(p for p in sample_papers() if p["arxiv_id"] == DPR)
        docs = await _source(arxiv_api).search(Query(DPR_QUERY, 5))
        assert 0 < len(docs) <= 5
        doc = next(d for d in docs if d.arxiv_id == DPR)
        assert doc.id == f"arxiv:{DPR}"
        assert doc.title == "Dense Passage Retrieval for Open-Domain Question Answering"
        assert doc.authors == tuple(a for a in record["authors"] if a != "et al.")
        assert doc.authors[0] == "Vladimir Karpukhin"
        assert doc.summary == " ".join(record["summary"].split())
        assert doc.published == dt.date(2020, 1, 1)
        assert doc.updated == dt.date(2020, 1, 1)
        assert doc.categories == ("cs.CL",)
        assert doc.pdf_url == f"http://arxiv.org/pdf/{DPR}v1"  # the feed's pdf link
        assert doc.url == f"https://arxiv.org/abs/{DPR}"
        assert doc.source is SourceKind.ARXIV
        assert doc.found_in == (SourceKind.ARXIV,)
        assert doc.doi == ""
        assert doc.score == 0.0

    async def test_request_carries_query_and_limit(self, arxiv_api: FakeApi) -> None:
        """One GET to /api/query with the OR-query of content words, by relevance, limit=N."""
        docs = await _source(arxiv_api).search(Query("retrieval augmented generation", 2))
        assert len(docs) == 2
        (request,) = arxiv_api.requests
        assert urlsplit(request[1]).path == "/api/query"
        args = _query_args(arxiv_api)
        assert args["search_query"] == ["all:retrieval OR all:augmented OR all:generation"]
        assert args["max_results"] == ["2"]
        assert args["sortBy"] == ["relevance"]
        assert args["start"] == ["0"]

    async def test_empty_feed(self, arxiv_api: FakeApi) -> None:
        """A feed without entries is an empty result, not an error."""
        arxiv_api.behaviour.empty = True
        assert await _source(arxiv_api).search(Query(DPR_QUERY, 5)) == []
        assert len(arxiv_api.requests) == 1

    @pytest.mark.parametrize(
        ("entry_id", "expected"),
        [
            ("http://arxiv.org/abs/2005.11401v4", "2005.11401"),
            ("https://arxiv.org/abs/2005.11401", "2005.11401"),
            ("http://arxiv.org/abs/2005.11401v12", "2005.11401"),
            ("http://arxiv.org/abs/hep-th/9901001v2", "hep-th/9901001"),
        ],
    )
    def test_short_id(self, entry_id: str, expected: str) -> None:
        """short_id strips the URL and the version."""
        assert short_id(entry_id) == expected


class TestFailures:
    async def test_http_timeout(self, arxiv_api: FakeApi) -> None:
        """A server slower than http_timeout raises a timeout well before it would answer."""
        arxiv_api.behaviour.latency = 2.0
        started = time.perf_counter()
        with pytest.raises(requests.exceptions.Timeout):
            await _source(arxiv_api, http_timeout=0.2).search(Query(DPR_QUERY, 3))
        assert time.perf_counter() - started < 1.0

    @pytest.mark.parametrize("status", [500, 429])
    async def test_http_error_status(self, arxiv_api: FakeApi, status: int) -> None:
        """A non-200 answer raises at once (no retry) with an error naming the status."""
        arxiv_api.behaviour.status = status
        arxiv_api.behaviour.retry_after = "30"
        with pytest.raises(arxiv.HTTPError, match=rf"HTTP {status}\b") as caught:
            await _source(arxiv_api).search(Query(DPR_QUERY, 3))
        assert caught.value.status == status
        assert len(arxiv_api.requests) == 1

    async def test_malformed_feed(self, arxiv_api: FakeApi) -> None:
        """A 200 answer that is not an Atom feed (an HTML proxy error page) raises
        MalformedFeedError instead of looking like "no results"."""
        arxiv_api.behaviour.malformed = True
        with pytest.raises(MalformedFeedError, match="malformed arXiv"):
            await _source(arxiv_api).search(Query(DPR_QUERY, 3))
        assert len(arxiv_api.requests) == 1

    async def test_unparseable_body(self, static_server: StaticServer) -> None:
        """A 200 answer lxml cannot parse at all (empty body) raises MalformedFeedError."""
        source = ArxivSource(
            f"{static_server.base_url}/api/query", http_timeout=5, spacing=RequestSpacing(0)
        )
        with pytest.raises(MalformedFeedError, match="malformed arXiv"):
            await source.search(Query(DPR_QUERY, 3))
        assert static_server.hits == 1


class StaticServer:
    """A local HTTP server answering every GET with 200 and an empty body."""

    def __init__(self) -> None:
        owner = self
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                """200, Content-Length 0."""
                owner.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def static_server() -> Iterator[StaticServer]:
    """A server whose answers are empty 200s."""
    server = StaticServer()
    yield server
    server.close()


class TestRequestSpacing:
    async def test_requests_to_the_server_are_spaced(self, arxiv_api: FakeApi) -> None:
        """Three concurrent searches through one RequestSpacing(0.3) reach the API >= 0.3 s
        apart (by the server's own clock), yet all of them succeed."""
        source = _source(arxiv_api, interval=0.3)
        queries = [Query(DPR_QUERY, 2), Query("attention transformer", 2), Query("bert", 2)]
        results = await asyncio.gather(*(source.search(q) for q in queries))
        assert all(results)
        stamps = sorted(stamp for stamp, _, _ in arxiv_api.requests)
        assert len(stamps) == 3
        gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
        # The slots are exactly 0.3 s apart; allow a few ms of thread and socket jitter.
        assert all(gap >= 0.3 - 0.015 for gap in gaps), gaps
        assert stamps[-1] - stamps[0] < 1.0

    async def test_slots_with_a_fake_clock(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Callers reserve consecutive slots `interval` apart and sleep until theirs; once the
        clock passed the last slot, the next caller goes at once."""
        now = [100.0]
        sleeps: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(round(seconds, 6))

        monkeypatch.setattr(arxiv_source, "asyncio", SimpleNamespace(sleep=fake_sleep))
        spacing = RequestSpacing(0.3, clock=lambda: now[0])
        for _ in range(3):
            await spacing.wait()
        assert sleeps == [0.3, 0.6]  # the first went at once
        now[0] = 101.0  # later than every reserved slot (100.6)
        await spacing.wait()
        assert sleeps == [0.3, 0.6]
        now[0] = 101.1
        await spacing.wait()
        assert sleeps == [0.3, 0.6, 0.2]  # 101.0 + 0.3 - 101.1

    async def test_zero_interval_never_sleeps(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """RequestSpacing(0) lets every caller through at once."""
        sleeps: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(seconds)

        monkeypatch.setattr(arxiv_source, "asyncio", SimpleNamespace(sleep=fake_sleep))
        spacing = RequestSpacing(0.0, clock=lambda: 5.0)
        for _ in range(5):
            await spacing.wait()
        assert sleeps == []


class TestArxivQuery:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("retrieval augmented generation", "all:retrieval OR all:augmented OR all:generation"),
            ("What is the Transformer?", "all:transformer"),
            ("Retrieval-augmented LLMs and retrieval", "all:retrieval OR all:augmented OR all:llm"),
            ("the of and", 'all:"the of and"'),
        ],
        ids=["content-words", "stop-words-dropped", "deduplicated", "only-stop-words"],
    )
    def test_query(self, text: str, expected: str) -> None:
        """Content words (tokenized, deduplicated) joined as `all:x OR all:y`; a text without
        content words is searched as a phrase."""
        assert arxiv_query(text) == expected

    def test_at_most_max_terms(self) -> None:
        """Only the first `max_terms` content words are used."""
        words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"
        assert arxiv_query(words, max_terms=3) == "all:alpha OR all:bravo OR all:charlie"
        assert arxiv_query(words).count("all:") == 8
