"""ResearchService over a real in-process server (ResearchModule + ServiceServer on port 0)
pointed at this package's fake arXiv and Tavily servers and the stack's embedding service."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.type.v1 import document_pb2
from ponder_devstack.fake_apis import FakeApi


LIBRARY = document_pb2.SOURCE_KIND_LIBRARY
ARXIV = document_pb2.SOURCE_KIND_ARXIV
WEB = document_pb2.SOURCE_KIND_WEB
RAG_ID = "arxiv:2005.11401"
OK = research_pb2.SOURCE_STATE_OK
SOURCES_VIOLATION = "must be SOURCE_KIND_ARXIV, _WEB or _LIBRARY"
MAX_RESULTS_VIOLATION = "must be between 1 and 50 (0 means the default), got {}"


def _bad_request(exc: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """(field, description) of every BadRequest violation in a failed call."""
    status = rpc_status.from_call(exc)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def _search(
    channel: grpc.aio.Channel, *, deadline: float = 10, **fields: Any
) -> research_pb2.SearchSourcesResponse:
    reply: research_pb2.SearchSourcesResponse = await research_grpc.ResearchServiceStub(
        channel
    ).SearchSources(research_pb2.SearchSourcesRequest(**fields), timeout=deadline)
    return reply


async def _search_error(channel: grpc.aio.Channel, **fields: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _search(channel, **fields)
    return caught.value


def _statuses(reply: research_pb2.SearchSourcesResponse) -> dict[int, research_pb2.SourceStatus]:
    return {status.source: status for status in reply.source_statuses}


class TestSearchSources:
    @pytest.mark.parametrize(
        "order", [[LIBRARY, ARXIV, WEB], [WEB, LIBRARY, ARXIV]], ids=["l-a-w", "w-l-a"]
    )
    async def test_statuses_in_request_order(
        self, start_research, order: list[int], arxiv_api: FakeApi, tavily_api: FakeApi
    ) -> None:
        """All three sources requested: one OK status per source, in the request's order,
        each with its result count; documents deduplicated and ranked by embedding."""
        _, channel = await start_research()
        reply = await _search(channel, query="retrieval augmented generation", sources=order)
        assert [status.source for status in reply.source_statuses] == order
        for status in reply.source_statuses:
            assert status.state == OK, status
            assert 0 < status.result_count <= 10
            assert status.message == ""
            assert status.cached is False
            assert status.latency.ToNanoseconds() > 0
        assert (len(arxiv_api.requests), len(tavily_api.requests)) == (1, 1)
        ids = [doc.id for doc in reply.documents]
        assert len(ids) == len(set(ids)) == 10
        assert reply.duplicates_removed > 0
        assert reply.ranking == research_pb2.RANKING_METHOD_EMBEDDING_SIMILARITY
        assert reply.ranking_note == ""
        scores = [doc.score for doc in reply.documents]
        assert scores == sorted(scores, reverse=True)
        assert all(-1 <= score <= 1 for score in scores)

    async def test_finds_the_rag_paper_in_every_source(self, start_research) -> None:
        """The RAG paper ranks in the top 3 as one document "arxiv:2005.11401", found in all
        three sources, with arXiv's metadata."""
        _, channel = await start_research(indexed=True)
        reply = await _search(
            channel, query="retrieval augmented generation", sources=[LIBRARY, ARXIV, WEB]
        )
        ids = [doc.id for doc in reply.documents]
        assert RAG_ID in ids[:3]
        rag = reply.documents[ids.index(RAG_ID)]
        assert rag.title == "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks"
        assert rag.source == ARXIV
        assert list(rag.found_in) == [LIBRARY, ARXIV, WEB]
        assert rag.url == "https://arxiv.org/abs/2005.11401"
        assert rag.pdf_url == "http://arxiv.org/pdf/2005.11401v1"
        assert list(rag.categories) == ["cs.CL"]
        assert "Patrick Lewis" in rag.authors
        assert rag.published_time.ToDatetime().year == 2020
        assert rag.update_time.ToDatetime().year == 2020
        assert not any(doc_id.startswith("web:arxiv.org") for doc_id in ids)

    async def test_no_sources_means_every_source(self, research_channel) -> None:
        """Without requested sources every source is asked and reported."""
        reply = await _search(research_channel, query="attention is all you need", max_results=3)
        assert len(reply.documents) == 3
        assert reply.documents[0].id == "arxiv:1706.03762"
        assert [status.source for status in reply.source_statuses] == [ARXIV, WEB, LIBRARY]

    async def test_no_match_is_ok_and_empty(self, start_research) -> None:
        """A query matching nothing in the library answers OK with no documents."""
        _, channel = await start_research(indexed=True)
        reply = await _search(channel, query="zebrafish", sources=[LIBRARY])
        assert list(reply.documents) == []
        (status,) = reply.source_statuses
        assert (status.state, status.result_count) == (OK, 0)

    async def test_failing_and_disabled_sources(self, start_research, arxiv_api: FakeApi) -> None:
        """arXiv answering 500 is ERROR naming the status, web without a key is DISABLED
        naming TAVILY_API_KEY; the library still answers."""
        arxiv_api.behaviour.status = 500
        _, channel = await start_research(tavily_api_key=None)
        reply = await _search(channel, query="retrieval", sources=[ARXIV, WEB, LIBRARY])
        statuses = _statuses(reply)
        assert statuses[ARXIV].state == research_pb2.SOURCE_STATE_ERROR
        assert "HTTP 500" in statuses[ARXIV].message
        assert statuses[WEB].state == research_pb2.SOURCE_STATE_DISABLED
        assert "TAVILY_API_KEY" in statuses[WEB].message
        assert statuses[LIBRARY].state == OK
        assert len(reply.documents) > 0
        assert {doc.source for doc in reply.documents} == {LIBRARY}

    async def test_only_failing_sources_is_unavailable(
        self, start_research, arxiv_api: FakeApi
    ) -> None:
        """When every requested source fails: UNAVAILABLE, each source's state in ErrorInfo."""
        arxiv_api.behaviour.status = 429
        _, channel = await start_research(tavily_api_key=None)
        exc = await _search_error(channel, query="rag", sources=[ARXIV, WEB])
        assert exc.code() is grpc.StatusCode.UNAVAILABLE
        assert (exc.details() or "").startswith("every source failed: ")
        status = rpc_status.from_call(exc)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        assert any(detail.Unpack(info) for detail in status.details)
        assert (info.domain, info.reason) == ("ponder.dev", "UNAVAILABLE")
        assert set(info.metadata) == {"arxiv", "web"}
        assert info.metadata["arxiv"].startswith("error: ")
        assert "HTTP 429" in info.metadata["arxiv"]
        assert info.metadata["web"].startswith("disabled: ")

    async def test_slow_source_times_out(self, start_research, arxiv_api: FakeApi) -> None:
        """A source slower than source_timeout is TIMEOUT; the others' results come back
        without waiting for it."""
        arxiv_api.behaviour.latency = 1.0
        _, channel = await start_research()
        started = time.perf_counter()
        reply = await _search(
            channel,
            query="retrieval augmented generation",
            sources=[ARXIV, WEB, LIBRARY],
            source_timeout=duration_pb2.Duration(nanos=300_000_000),
        )
        assert time.perf_counter() - started < 0.9
        statuses = _statuses(reply)
        assert statuses[ARXIV].state == research_pb2.SOURCE_STATE_TIMEOUT
        assert statuses[ARXIV].message == "no answer within 0.30s"
        assert (statuses[WEB].state, statuses[LIBRARY].state) == (OK, OK)
        assert RAG_ID in [doc.id for doc in reply.documents]

    async def test_caller_deadline_bounds_sources(self, start_research, arxiv_api: FakeApi) -> None:
        """A short call deadline cuts each source's time, so the reply (arXiv TIMEOUT) still
        arrives before the deadline."""
        arxiv_api.behaviour.latency = 1.0
        _, channel = await start_research()
        reply = await _search(channel, deadline=0.6, query="retrieval", sources=[ARXIV, LIBRARY])
        statuses = _statuses(reply)
        assert statuses[ARXIV].state == research_pb2.SOURCE_STATE_TIMEOUT
        assert statuses[ARXIV].latency.ToNanoseconds() < 500_000_000
        assert statuses[LIBRARY].state == OK

    async def test_domains_reach_tavily(self, research_channel, tavily_api: FakeApi) -> None:
        """include_domains and exclude_domains are sent to Tavily."""
        await _search(
            research_channel,
            query="dense passage retrieval",
            sources=[WEB],
            include_domains=["arxiv.org"],
            exclude_domains=["example.com", "spam.test"],
        )
        body = json.loads(tavily_api.requests[-1][2])
        assert body["include_domains"] == ["arxiv.org"]
        assert body["exclude_domains"] == ["example.com", "spam.test"]

    async def test_repeated_search_is_cached(
        self, research_channel, arxiv_api: FakeApi, tavily_api: FakeApi
    ) -> None:
        """An identical search moments later is answered from the source cache: every status
        says cached and the fake APIs saw one request each."""
        request: dict[str, Any] = {"query": "chain of thought prompting", "sources": [ARXIV, WEB]}
        first = await _search(research_channel, **request)
        second = await _search(research_channel, **request)
        assert [s.cached for s in first.source_statuses] == [False, False]
        assert [s.cached for s in second.source_statuses] == [True, True]
        assert (len(arxiv_api.requests), len(tavily_api.requests)) == (1, 1)
        assert [d.id for d in second.documents] == [d.id for d in first.documents]

    async def test_ranking_falls_back_without_embedding(self, start_research) -> None:
        """With the embedding service unreachable, the reply keeps source order and says so."""
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = f"127.0.0.1:{sock.getsockname()[1]}"
        _, channel = await start_research(embedding_addr=closed, embedding_timeout_seconds=1)
        reply = await _search(channel, query="retrieval augmented generation", max_results=5)
        assert reply.ranking == research_pb2.RANKING_METHOD_SOURCE_ORDER
        assert "unavailable" in reply.ranking_note
        scores = [doc.score for doc in reply.documents]
        assert scores[0] == 1.0
        assert scores == sorted(scores, reverse=True)
        # 1 / (1 + rank within its source): 1, 1/2, 1/3, ...
        assert all(float(round(1 / score)) == pytest.approx(1 / score) for score in scores)
        assert [status.state for status in reply.source_statuses] == [OK, OK, OK]


class TestValidation:
    async def test_bad_input_lists_every_violation(
        self, research_channel, arxiv_api: FakeApi, tavily_api: FakeApi
    ) -> None:
        """Empty query, max_results=500, unknown source 42 and 51 include_domains ->
        INVALID_ARGUMENT with one BadRequest violation each; no source is asked."""
        exc = await _search_error(
            research_channel,
            query="",
            max_results=500,
            sources=[LIBRARY, 42],
            include_domains=[f"d{i}.example" for i in range(51)],
        )
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert _bad_request(exc) == [
            ("query", "must not be empty"),
            ("max_results", MAX_RESULTS_VIOLATION.format(500)),
            ("sources[1]", SOURCES_VIOLATION),
            ("include_domains", "must have between 0 and 50 items, got 51"),
        ]
        assert (arxiv_api.requests, tavily_api.requests) == ([], [])

    @pytest.mark.parametrize(
        ("fields", "violation"),
        [
            ({"query": "   "}, ("query", "must not be empty")),
            ({"query": "x" * 2001}, ("query", "must be at most 2000 characters, got 2001")),
            (
                {"query": "rag", "max_results": -1},
                ("max_results", MAX_RESULTS_VIOLATION.format(-1)),
            ),
            (
                {"query": "rag", "max_results": 51},
                ("max_results", MAX_RESULTS_VIOLATION.format(51)),
            ),
            (
                {"query": "rag", "sources": [LIBRARY, document_pb2.SOURCE_KIND_UNSPECIFIED]},
                ("sources[1]", SOURCES_VIOLATION),
            ),
            ({"query": "rag", "sources": [42]}, ("sources[0]", SOURCES_VIOLATION)),
            (
                {"query": "rag", "exclude_domains": ["x.example"] * 51},
                ("exclude_domains", "must have between 0 and 50 items, got 51"),
            ),
            (
                {"query": "rag", "include_domains": ["arxiv.org", " "]},
                ("include_domains[1]", "must not be empty"),
            ),
            (
                {"query": "rag", "exclude_domains": ["a" * 254]},
                ("exclude_domains[0]", "must be at most 253 characters, got 254"),
            ),
            (
                {"query": "rag", "source_timeout": duration_pb2.Duration(seconds=200)},
                ("source_timeout", "must be between 0.01 and 120, got 200"),
            ),
            (
                {"query": "rag", "source_timeout": duration_pb2.Duration()},
                ("source_timeout", "must be between 0.01 and 120, got 0"),
            ),
        ],
        ids=[
            "blank-query",
            "long-query",
            "negative-max-results",
            "max-results-51",
            "unspecified-source",
            "unknown-source-number",
            "51-exclude-domains",
            "blank-domain",
            "long-domain",
            "timeout-too-long",
            "timeout-zero",
        ],
    )
    async def test_single_violation(
        self, research_channel, fields: dict[str, Any], violation: tuple[str, str]
    ) -> None:
        """Each malformed field is reported as its own BadRequest violation."""
        exc = await _search_error(research_channel, **fields)
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert _bad_request(exc) == [violation]

    async def test_bounds_are_accepted(self, research_channel) -> None:
        """max_results=50, 50 domains and a 0.5 s source timeout are accepted."""
        reply = await _search(
            research_channel,
            query="language model",
            max_results=50,
            source_timeout=duration_pb2.Duration(nanos=500_000_000),
            exclude_domains=[f"d{i}.example" for i in range(50)],
            sources=[LIBRARY, ARXIV, WEB],
        )
        assert 10 < len(reply.documents) <= 50


class TestResearchModule:
    async def test_not_serving_until_the_library_is_loaded(self, start_research) -> None:
        """Health is NOT_SERVING before mark_ready() loaded the library, SERVING after."""
        server, channel = await start_research(ready=False)
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="ponder.research.v1.ResearchService")
        assert (await health.Check(request, timeout=5)).status == (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await server.mark_ready()
        assert (await health.Check(request, timeout=5)).status == (
            health_pb2.HealthCheckResponse.SERVING
        )

    async def test_user_library_folder(self, start_research, tmp_path: Path) -> None:
        """Documents from library folders are searchable (by meaning once indexed)."""
        (tmp_path / "zebrafish.md").write_text(
            "# Zebrafish regeneration\n\nZebrafish regrow their fins.\n", encoding="utf-8"
        )
        _, channel = await start_research(
            library_dirs=[tmp_path], include_sample_library=False, indexed=True
        )
        reply = await _search(channel, query="how do fish regrow fins", sources=[LIBRARY])
        assert [doc.id for doc in reply.documents] == ["library:zebrafish"]
        assert reply.documents[0].title == "Zebrafish regeneration"
        assert list(reply.documents[0].found_in) == [LIBRARY]
        empty = await _search(channel, query="retrieval augmented generation", sources=[LIBRARY])
        assert list(empty.documents) == []
