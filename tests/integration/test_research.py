"""ResearchService end to end: the real arxiv and tavily-python clients against local servers
that speak their APIs, the embedding service for ranking, over real gRPC sockets."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.research.v1 import research_service_pb2 as pb
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.type.v1 import document_pb2
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import load_settings
from tests.conftest import InProcessStack, start_service
from tests.support.fakes import behaving


ARXIV, WEB, LIBRARY = (
    document_pb2.SOURCE_KIND_ARXIV,
    document_pb2.SOURCE_KIND_WEB,
    document_pb2.SOURCE_KIND_LIBRARY,
)


@pytest.fixture
async def research(stack: InProcessStack):
    """A stub to the in-process research service."""
    async with grpc.aio.insecure_channel(stack.address("research")) as channel:
        yield research_grpc.ResearchServiceStub(channel)


def statuses(reply: pb.SearchSourcesResponse) -> dict[int, int]:
    """Source kind -> state."""
    return {s.source: s.state for s in reply.source_statuses}


async def test_same_paper_from_three_sources_is_one_ranked_document(research):
    """arXiv, the web and the library all find DPR: one document, found in all three, and the
    list is ranked by embedding similarity (scores descending)."""
    reply = await research.SearchSources(
        pb.SearchSourcesRequest(
            query="dense passage retrieval for open-domain question answering",
            sources=[ARXIV, WEB, LIBRARY],
            max_results=8,
        ),
        timeout=30,
    )
    assert set(statuses(reply).values()) == {pb.SOURCE_STATE_OK}
    ids = [doc.id for doc in reply.documents]
    assert len(ids) == len(set(ids))
    dpr = reply.documents[ids.index("arxiv:2004.04906")]
    assert set(dpr.found_in) == {ARXIV, WEB, LIBRARY}
    assert dpr.source == ARXIV  # arXiv's metadata is preferred
    assert dpr.title == "Dense Passage Retrieval for Open-Domain Question Answering"
    assert dpr.pdf_url.startswith("http")
    assert reply.duplicates_removed >= 2
    assert reply.ranking == pb.RANKING_METHOD_EMBEDDING_SIMILARITY
    scores = [doc.score for doc in reply.documents]
    assert scores == sorted(scores, reverse=True)
    assert ids[0] == "arxiv:2004.04906"


async def test_a_slow_source_times_out_and_the_rest_answer(research, fake_arxiv):
    """arXiv slower than its timeout is TIMEOUT; web and library still answer, fast."""
    with behaving(fake_arxiv, latency=2.0):
        started = time.monotonic()
        reply = await research.SearchSources(
            pb.SearchSourcesRequest(
                query="chain of thought prompting elicits reasoning (slow arxiv)",
                source_timeout=duration_pb2.Duration(nanos=500_000_000),
            ),
            timeout=30,
        )
        elapsed = time.monotonic() - started
    state = statuses(reply)
    assert state[ARXIV] == pb.SOURCE_STATE_TIMEOUT
    assert state[WEB] == state[LIBRARY] == pb.SOURCE_STATE_OK
    assert reply.documents
    assert elapsed < 1.5
    arxiv = next(s for s in reply.source_statuses if s.source == ARXIV)
    assert "0.50s" in arxiv.message


@pytest.mark.parametrize(
    ("behaviour", "needle"),
    [
        ({"status": 429, "retry_after": "7"}, "429"),
        ({"status": 500}, "500"),
        ({"malformed": True}, "malformed"),
    ],
    ids=["rate-limited", "server-error", "malformed"],
)
async def test_a_failing_web_source_is_an_error_status(research, fake_tavily, behaviour, needle):
    """HTTP 429/500 or a malformed reply from the web source is its ERROR, with the reason;
    the search still succeeds from the other sources."""
    with behaving(fake_tavily, **behaviour):
        reply = await research.SearchSources(
            pb.SearchSourcesRequest(query=f"toolformer self-supervised tool use {needle}"),
            timeout=30,
        )
    web = next(s for s in reply.source_statuses if s.source == WEB)
    assert web.state == pb.SOURCE_STATE_ERROR
    assert needle.lower() in web.message.lower() or "Error" in web.message
    assert statuses(reply)[LIBRARY] == pb.SOURCE_STATE_OK


async def test_malformed_arxiv_feed_and_empty_results(research, fake_arxiv, fake_tavily):
    """A non-Atom arXiv reply is ERROR ("malformed"); an empty web result is OK with 0."""
    with behaving(fake_arxiv, malformed=True), behaving(fake_tavily, empty=True):
        reply = await research.SearchSources(
            pb.SearchSourcesRequest(query="lost in the middle long contexts (malformed)"),
            timeout=30,
        )
    arxiv = next(s for s in reply.source_statuses if s.source == ARXIV)
    web = next(s for s in reply.source_statuses if s.source == WEB)
    assert arxiv.state == pb.SOURCE_STATE_ERROR
    assert "malformed" in arxiv.message.lower()
    assert (web.state, web.result_count) == (pb.SOURCE_STATE_OK, 0)


async def test_every_source_failing_is_unavailable_with_reasons(research, fake_arxiv, fake_tavily):
    """When all requested sources fail the call is UNAVAILABLE and its ErrorInfo names each
    source's failure."""
    with (
        behaving(fake_arxiv, status=500),
        behaving(fake_tavily, status=500),
        pytest.raises(grpc.aio.AioRpcError) as caught,
    ):
        await research.SearchSources(
            pb.SearchSourcesRequest(query="mixture of experts routing", sources=[ARXIV, WEB]),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert set(info.metadata) == {"arxiv", "web"}
    assert all(value.startswith("error") for value in info.metadata.values())


async def test_a_deadline_shorter_than_a_source_still_gets_an_answer(research, fake_arxiv):
    """With a 1 s deadline and a 3 s arXiv, the reply comes in time with arXiv TIMEOUT."""
    with behaving(fake_arxiv, latency=3.0):
        started = time.monotonic()
        reply = await research.SearchSources(
            pb.SearchSourcesRequest(query="reflexion verbal reinforcement (deadline)"),
            timeout=1.0,
        )
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert statuses(reply)[ARXIV] == pb.SOURCE_STATE_TIMEOUT
    assert reply.documents


async def test_identical_concurrent_searches_share_one_upstream_call(research, fake_arxiv):
    """Ten identical searches at once reach arXiv once; a repeat right after is served from
    the source cache and says so."""
    request = pb.SearchSourcesRequest(
        query="scaling laws for neural language models", sources=[ARXIV]
    )
    with behaving(fake_arxiv, latency=0.3):
        before = len(fake_arxiv.requests)
        replies = await asyncio.gather(
            *(research.SearchSources(request, timeout=30) for _ in range(10))
        )
        assert len(fake_arxiv.requests) - before == 1
    assert all(r.documents[0].id == replies[0].documents[0].id for r in replies)
    again = await research.SearchSources(request, timeout=30)
    assert again.source_statuses[0].cached
    assert len(fake_arxiv.requests) - before == 1


async def test_embedding_down_falls_back_to_source_order(fake_arxiv, fake_tavily, tmp_path):
    """Without the embedding service, results keep the sources' order (interleaved), the
    library is searched by keywords, and the reply says why."""
    settings = load_settings(
        ResearchSettings,
        host="127.0.0.1",
        port=0,
        arxiv_api_url=f"{fake_arxiv.base_url}/api/query",
        arxiv_min_interval_seconds=0.0,
        tavily_api_url=fake_tavily.base_url,
        tavily_api_key="tvly-test-key",
        embedding_addr="127.0.0.1:1",
        embedding_timeout_seconds=1.0,
        index_path=tmp_path / "vectors.sqlite3",
    )
    server = await start_service(settings, ResearchModule, InMemorySpanExporter())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            reply = await research_grpc.ResearchServiceStub(channel).SearchSources(
                pb.SearchSourcesRequest(query="retrieval augmented generation"), timeout=30
            )
    finally:
        await server.stop(0)
    assert reply.ranking == pb.RANKING_METHOD_SOURCE_ORDER
    assert "unavailable" in reply.ranking_note
    assert set(statuses(reply).values()) == {pb.SOURCE_STATE_OK}
    assert reply.documents[0].score == 1.0  # first of its source
    assert "arxiv:2005.11401" in {doc.id for doc in reply.documents}
