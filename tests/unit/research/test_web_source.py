"""WebSource with the real AsyncTavilyClient against a local fake Tavily API (real sockets):
DISABLED without a key, mapping, domains in the request body, failures, empty results."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tavily.errors import TimeoutError as TavilyTimeoutError
from tavily.errors import UsageLimitExceededError

from ponder_devstack.fake_apis import FakeApi, sample_papers
from ponder_research.documents import SourceKind
from ponder_research.sources import Query, SourceDisabledError
from ponder_research.web_source import WebSource, to_document


DPR = "2004.04906"
DPR_QUERY = "dense passage retrieval for open-domain question answering"


def _source(api: FakeApi, *, key: str | None = "tvly-test-key", timeout: float = 5) -> WebSource:
    return WebSource(
        SecretStr(key) if key is not None else None, api_base_url=api.base_url, timeout=timeout
    )


def _body(api: FakeApi, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(api.requests[index][2])
    return body


class TestDisabled:
    @pytest.mark.parametrize("key", [None, ""], ids=["no-key", "empty-key"])
    async def test_no_key(self, tavily_api: FakeApi, key: str | None) -> None:
        """Without an API key the source raises SourceDisabledError naming TAVILY_API_KEY and
        sends nothing."""
        with pytest.raises(SourceDisabledError, match="TAVILY_API_KEY"):
            await _source(tavily_api, key=key).search(Query(DPR_QUERY, 3))
        assert tavily_api.requests == []


class TestMapping:
    async def test_fields_of_a_result(self, tavily_api: FakeApi) -> None:
        """A Tavily result becomes a WEB document: id web:<normalised url>, the arXiv id of an
        arXiv URL, the content as summary, Tavily's score; results in Tavily's order."""
        record = next(p for p in sample_papers() if p["arxiv_id"] == DPR)
        docs = await _source(tavily_api).search(Query(DPR_QUERY, 3))
        assert 0 < len(docs) <= 3
        doc = next(d for d in docs if d.arxiv_id == DPR)
        assert doc.id == f"web:arxiv.org/abs/{DPR}"
        assert doc.title == record["title"]
        assert doc.summary == " ".join(record["summary"].split())
        assert doc.url == f"https://arxiv.org/abs/{DPR}"
        assert doc.source is SourceKind.WEB
        assert doc.found_in == (SourceKind.WEB,)
        assert doc.authors == ()
        assert doc.published is None
        assert [d.score for d in docs] == [round(0.9 - 0.05 * i, 3) for i in range(len(docs))]

    async def test_request_body(self, tavily_api: FakeApi) -> None:
        """One POST /search with the query and max_results; no domain keys when none given."""
        await _source(tavily_api).search(Query(DPR_QUERY, 4))
        ((_, path, _),) = tavily_api.requests
        assert path == "/search"
        body = _body(tavily_api)
        assert body["query"] == DPR_QUERY
        assert body["max_results"] == 4
        assert "include_domains" not in body
        assert "exclude_domains" not in body

    async def test_domains_are_sent(self, tavily_api: FakeApi) -> None:
        """include_domains and exclude_domains of the query are sent in the JSON body."""
        query = Query(
            DPR_QUERY,
            3,
            include_domains=("arxiv.org", "aclanthology.org"),
            exclude_domains=("example.com",),
        )
        await _source(tavily_api).search(query)
        body = _body(tavily_api)
        assert body["include_domains"] == ["arxiv.org", "aclanthology.org"]
        assert body["exclude_domains"] == ["example.com"]

    async def test_empty_results(self, tavily_api: FakeApi) -> None:
        """A reply with no results is an empty list."""
        tavily_api.behaviour.empty = True
        assert await _source(tavily_api).search(Query(DPR_QUERY, 3)) == []
        assert len(tavily_api.requests) == 1

    def test_to_document_skips_results_without_url_or_title(self) -> None:
        """A result without a URL or a title maps to None."""
        assert to_document({"title": "T", "url": "", "content": "c"}) is None
        assert to_document({"title": "  ", "url": "https://example.com", "content": "c"}) is None

    def test_to_document_non_arxiv_page(self) -> None:
        """A web page keeps its URL, gets no arXiv id, and its published date is parsed."""
        doc = to_document(
            {
                "title": "  A   blog post ",
                "url": "https://www.example.com/post/?utm_source=x",
                "content": "Some\n  text",
                "score": 0.42,
                "published_date": "2024-03-05T10:00:00Z",
            }
        )
        assert doc is not None
        assert doc.id == "web:example.com/post"
        assert doc.title == "A blog post"
        assert doc.summary == "Some text"
        assert doc.arxiv_id == ""
        assert doc.score == 0.42
        assert doc.published == dt.date(2024, 3, 5)


class TestFailures:
    @pytest.mark.parametrize(
        ("status", "error"),
        [(429, UsageLimitExceededError), (500, httpx.HTTPStatusError)],
        ids=["429", "500"],
    )
    async def test_http_error_status(
        self, tavily_api: FakeApi, status: int, error: type[Exception]
    ) -> None:
        """An HTTP error status raises (usage limit for 429, an HTTP error for 500)."""
        tavily_api.behaviour.status = status
        tavily_api.behaviour.retry_after = "5"
        with pytest.raises(error):
            await _source(tavily_api).search(Query(DPR_QUERY, 3))
        assert len(tavily_api.requests) == 1

    async def test_500_names_the_status(self, tavily_api: FakeApi) -> None:
        """The error of a 500 says 500."""
        tavily_api.behaviour.status = 500
        with pytest.raises(httpx.HTTPStatusError, match="500"):
            await _source(tavily_api).search(Query(DPR_QUERY, 3))

    async def test_malformed_json(self, tavily_api: FakeApi) -> None:
        """A body that is not valid JSON raises."""
        tavily_api.behaviour.malformed = True
        with pytest.raises(ValueError, match=r"delimiter|Expecting"):
            await _source(tavily_api).search(Query(DPR_QUERY, 3))

    async def test_timeout(self, tavily_api: FakeApi) -> None:
        """A server slower than the source's timeout raises well before it would answer."""
        tavily_api.behaviour.latency = 2.0
        started = time.perf_counter()
        with pytest.raises(TavilyTimeoutError, match="timed out"):
            await _source(tavily_api, timeout=0.2).search(Query(DPR_QUERY, 3))
        assert time.perf_counter() - started < 1.0
