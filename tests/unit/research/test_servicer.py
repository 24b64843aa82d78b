"""ResearchService over a real in-process server (ResearchModule + ServiceServer)."""

from __future__ import annotations

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


LIBRARY = document_pb2.SOURCE_KIND_LIBRARY
ARXIV = document_pb2.SOURCE_KIND_ARXIV
WEB = document_pb2.SOURCE_KIND_WEB
RAG_ID = "library:2005.11401"


def _bad_request(exc: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """(field, description) of every BadRequest violation in a failed call."""
    status = rpc_status.from_call(exc)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def _search(channel: grpc.aio.Channel, **fields: Any) -> research_pb2.SearchSourcesResponse:
    reply: research_pb2.SearchSourcesResponse = await research_grpc.ResearchServiceStub(
        channel
    ).SearchSources(research_pb2.SearchSourcesRequest(**fields), timeout=10)
    return reply


async def _search_error(channel: grpc.aio.Channel, **fields: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _search(channel, **fields)
    return caught.value


class TestSearchSources:
    async def test_finds_the_rag_paper(self, research_channel) -> None:
        """'retrieval augmented generation' ranks the RAG paper in the top 3 (hyphens split)."""
        reply = await _search(
            research_channel,
            query="retrieval augmented generation",
            sources=[LIBRARY, ARXIV, WEB],
        )
        ids = [doc.id for doc in reply.documents]
        assert RAG_ID in ids[:3]
        assert len(ids) == 10  # the default max_results
        rag = reply.documents[ids.index(RAG_ID)]
        assert rag.title == "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks"
        assert rag.url == "https://arxiv.org/abs/2005.11401"
        assert rag.pdf_url == "https://arxiv.org/pdf/2005.11401"
        assert rag.source == LIBRARY
        assert list(rag.found_in) == [LIBRARY]
        assert rag.published_time.ToDatetime().year == 2020
        assert rag.score > 0
        scores = [doc.score for doc in reply.documents]
        assert scores == sorted(scores, reverse=True)

    async def test_source_statuses(self, research_channel) -> None:
        """LIBRARY reports OK with its count; ARXIV and WEB report DISABLED with a reason."""
        reply = await _search(
            research_channel,
            query="retrieval augmented generation",
            sources=[LIBRARY, ARXIV, WEB],
        )
        statuses = {status.source: status for status in reply.source_statuses}
        assert [status.source for status in reply.source_statuses] == [LIBRARY, ARXIV, WEB]
        assert statuses[LIBRARY].state == research_pb2.SOURCE_STATE_OK
        assert statuses[LIBRARY].result_count == 10
        assert statuses[LIBRARY].latency.ToNanoseconds() >= 0
        for kind in (ARXIV, WEB):
            assert statuses[kind].state == research_pb2.SOURCE_STATE_DISABLED
            assert statuses[kind].result_count == 0
            assert "not part of this build" in statuses[kind].message
        assert reply.duplicates_removed == 0

    async def test_no_sources_means_every_source(self, research_channel) -> None:
        """Without requested sources every source is asked (and reported)."""
        reply = await _search(research_channel, query="attention is all you need", max_results=3)
        assert len(reply.documents) == 3
        assert reply.documents[0].id == "library:1706.03762"
        assert {status.source for status in reply.source_statuses} == {LIBRARY, ARXIV, WEB}

    async def test_no_match_is_ok_and_empty(self, research_channel) -> None:
        """A query matching nothing answers OK with no documents."""
        reply = await _search(research_channel, query="zebrafish", sources=[LIBRARY])
        assert list(reply.documents) == []
        (status,) = reply.source_statuses
        assert (status.state, status.result_count) == (research_pb2.SOURCE_STATE_OK, 0)

    async def test_only_disabled_sources_is_unavailable(self, research_channel) -> None:
        """Asking only disabled sources fails UNAVAILABLE, each source's state in ErrorInfo."""
        exc = await _search_error(research_channel, query="rag", sources=[ARXIV, WEB])
        assert exc.code() is grpc.StatusCode.UNAVAILABLE
        assert (exc.details() or "").startswith("every source failed: ")
        status = rpc_status.from_call(exc)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        assert any(detail.Unpack(info) for detail in status.details)
        assert (info.domain, info.reason) == ("ponder.dev", "UNAVAILABLE")
        assert set(info.metadata) == {"arxiv", "web"}
        assert info.metadata["arxiv"].startswith("disabled: ")


class TestValidation:
    async def test_empty_query_and_too_many_results(self, research_channel) -> None:
        """Empty query and max_results=500 -> INVALID_ARGUMENT listing both fields."""
        exc = await _search_error(research_channel, query="", max_results=500)
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert _bad_request(exc) == [
            ("query", "must not be empty"),
            ("max_results", "must be between 1 and 50 (0 means the default), got 500"),
        ]

    @pytest.mark.parametrize(
        ("fields", "violation"),
        [
            ({"query": "   "}, ("query", "must not be empty")),
            ({"query": "x" * 2001}, ("query", "must be at most 2000 characters, got 2001")),
            (
                {"query": "rag", "max_results": -1},
                ("max_results", "must be between 1 and 50 (0 means the default), got -1"),
            ),
            (
                {"query": "rag", "sources": [LIBRARY, document_pb2.SOURCE_KIND_UNSPECIFIED]},
                ("sources[1]", "unknown source SOURCE_KIND_UNSPECIFIED"),
            ),
            ({"query": "rag", "sources": [42]}, ("sources[0]", "unknown source 42")),
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
            "unspecified-source",
            "unknown-source-number",
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

    async def test_max_results_and_timeout_within_bounds(self, research_channel) -> None:
        """max_results=50 and a 0.5 s source timeout are accepted."""
        reply = await _search(
            research_channel,
            query="language model",
            max_results=50,
            source_timeout=duration_pb2.Duration(nanos=500_000_000),
            sources=[LIBRARY],
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
        """Documents from PONDER_RESEARCH_LIBRARY_DIRS folders are searchable."""
        (tmp_path / "zebrafish.md").write_text(
            "# Zebrafish regeneration\n\nZebrafish regrow their fins.\n", encoding="utf-8"
        )
        _, channel = await start_research(library_dirs=[tmp_path], include_sample_library=False)
        reply = await _search(channel, query="zebrafish fins", sources=[LIBRARY])
        assert [doc.id for doc in reply.documents] == ["library:zebrafish"]
        assert reply.documents[0].title == "Zebrafish regeneration"
        empty = await _search(channel, query="retrieval augmented generation", sources=[LIBRARY])
        assert list(empty.documents) == []
