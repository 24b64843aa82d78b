"""The synchronous workflows end to end across the four in-process services, over real sockets."""

from __future__ import annotations

import re

import grpc
import pytest

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from tests.conftest import InProcessStack
from tests.support.grpc_errors import bad_request_fields


TOPIC = "How do language model agents use retrieval and self-reflection to improve answers?"


class TestRunReflectionWorkflow:
    """RunReflectionWorkflow: research -> rank -> reflect, returned finished."""

    async def test_returns_a_cited_result_grounded_in_the_sample_library(self, gateway_channel):
        """The finished workflow cites real sample-library papers with valid [n] markers."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        reply = await stub.RunReflectionWorkflow(
            workflow_pb2.RunReflectionWorkflowRequest(topic=TOPIC), timeout=60
        )
        workflow = reply.workflow
        assert workflow.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        assert re.fullmatch(r"workflows/[0-9a-f-]{36}", workflow.name)
        assert workflow.name == f"workflows/{workflow.id}"
        assert workflow.execution_time.ToNanoseconds() > 0
        result = workflow.result
        assert result.offline
        assert result.provider == "offline"
        assert len(result.text) > 200
        source_ids = {doc.id for doc in result.sources}
        assert 1 <= len(result.sources) <= 5
        assert result.citations, "the reflection cites nothing"
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", result.text)}
        for citation in result.citations:
            assert citation.document_id in source_ids
            assert citation.document_id.startswith("arxiv:")
            assert citation.url.startswith("https://arxiv.org/abs/")
            assert citation.index in markers
        titles = " ".join(c.title for c in result.citations)
        assert "Reflexion" in titles or "Self-RAG" in titles or "Self-Refine" in titles
        assert [step.name for step in workflow.steps] == [
            "cache_lookup",
            "research",
            "rank",
            "reflect",
            "cache_store",
        ]
        assert all(s.state == workflow_pb2.STEP_STATE_SUCCEEDED for s in workflow.steps)
        assert result.iterations
        assert result.score == result.iterations[-1].critique.score

    async def test_sources_are_ranked_by_the_embedding_model(self, gateway_channel):
        """Sources come back ordered by cosine similarity from all-MiniLM-L6-v2."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        reply = await stub.RunReflectionWorkflow(
            workflow_pb2.RunReflectionWorkflowRequest(
                topic="dense vector retrieval of passages for open-domain question answering",
                parameters=workflow_pb2.WorkflowParameters(max_sources=3),
            ),
            timeout=60,
        )
        sources = reply.workflow.result.sources
        scores = [doc.score for doc in sources]
        assert len(sources) == 3
        assert scores == sorted(scores, reverse=True)
        assert all(0 < score <= 1 for score in scores)
        assert "arxiv:2004.04906" in {doc.id for doc in sources}  # Dense Passage Retrieval
        assert (
            "embedding similarity"
            in next(s for s in reply.workflow.steps if s.name == "rank").message
        )

    async def test_one_trace_spans_the_call_chain(self, stack: InProcessStack, gateway_channel):
        """The gateway, research, embedding and reflection spans share the workflow's trace."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        reply = await stub.RunReflectionWorkflow(
            workflow_pb2.RunReflectionWorkflowRequest(topic="chain-of-thought prompting"),
            timeout=60,
        )
        trace_id = int(reply.workflow.trace_id, 16)
        names = {
            span.name
            for span in stack.spans.get_finished_spans()
            if span.context.trace_id == trace_id
        }
        for method in (
            "/ponder.workflow.v1.WorkflowService/RunReflectionWorkflow",
            "/ponder.research.v1.ResearchService/SearchSources",
            "/ponder.embedding.v1.EmbeddingService/RankDocuments",
            "/ponder.reflection.v1.ReflectionService/StreamReflect",
        ):
            assert method in names, (method, names)

    @pytest.mark.parametrize(
        ("request_kwargs", "fields"),
        [
            ({"topic": ""}, {"topic"}),
            ({"topic": "   "}, {"topic"}),
            ({"topic": "x" * 2001}, {"topic"}),
            (
                {
                    "topic": "transformers",
                    "parameters": workflow_pb2.WorkflowParameters(
                        max_sources=500, max_iterations=-1, score_threshold=11
                    ),
                },
                {
                    "parameters.max_sources",
                    "parameters.max_iterations",
                    "parameters.score_threshold",
                },
            ),
            (
                {
                    "topic": "transformers",
                    "parameters": workflow_pb2.WorkflowParameters(sources=[42]),  # type: ignore[list-item]
                },
                {"parameters.sources[0]"},
            ),
        ],
        ids=["empty-topic", "blank-topic", "long-topic", "absurd-limits", "unknown-source"],
    )
    async def test_invalid_requests_get_field_violations(
        self, gateway_channel, request_kwargs, fields
    ):
        """Bad input is INVALID_ARGUMENT with one BadRequest violation per bad field."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RunReflectionWorkflow(
                workflow_pb2.RunReflectionWorkflowRequest(**request_kwargs), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(caught.value) == fields

    async def test_a_topic_with_no_sources_fails_fast(self, gateway_channel):
        """A topic the library knows nothing about is FAILED_PRECONDITION, not an empty answer."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RunReflectionWorkflow(
                workflow_pb2.RunReflectionWorkflowRequest(topic="best sourdough bread recipe"),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no sources" in (caught.value.details() or "")


class TestOtherWorkflowKinds:
    """RunResearchWorkflow and RunWorkflow."""

    async def test_research_workflow_summarizes_in_one_iteration(self, gateway_channel):
        """The research kind returns sources, their statuses and a one-pass cited summary."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        reply = await stub.RunResearchWorkflow(
            workflow_pb2.RunResearchWorkflowRequest(
                topic="parameter-efficient fine-tuning with low-rank adapters",
                parameters=workflow_pb2.WorkflowParameters(
                    sources=[document_pb2.SOURCE_KIND_LIBRARY]
                ),
            ),
            timeout=60,
        )
        workflow = reply.workflow
        assert workflow.kind == workflow_pb2.WORKFLOW_KIND_RESEARCH
        assert workflow.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        assert len(workflow.result.iterations) == 1
        assert "arxiv:2106.09685" in {doc.id for doc in workflow.result.sources}  # LoRA
        assert "summarize" in [step.name for step in workflow.steps]

    async def test_research_reflection_merges_sources(self, gateway_channel):
        """RESEARCH_REFLECTION over every source: all three answer, the same paper found by
        arXiv, the web and the library is one source document listing all three."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        reply = await stub.RunWorkflow(
            workflow_pb2.RunWorkflowRequest(
                workflow=workflow_pb2.Workflow(
                    kind=workflow_pb2.WORKFLOW_KIND_RESEARCH_REFLECTION,
                    topic="retrieval-augmented generation for knowledge-intensive tasks",
                )
            ),
            timeout=60,
        )
        workflow = reply.workflow
        assert workflow.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        states = {s.source: s.state for s in workflow.result.source_statuses}
        assert set(states.values()) == {research_pb2.SOURCE_STATE_OK}
        assert len(states) == 3
        rag = next(d for d in workflow.result.sources if d.id == "arxiv:2005.11401")
        assert set(rag.found_in) == {
            document_pb2.SOURCE_KIND_ARXIV,
            document_pb2.SOURCE_KIND_WEB,
            document_pb2.SOURCE_KIND_LIBRARY,
        }
        ids = [d.id for d in workflow.result.sources]
        assert len(ids) == len(set(ids))
        assert workflow.warnings == []

    async def test_run_workflow_requires_a_kind(self, gateway_channel):
        """A workflow without a kind is rejected, naming workflow.kind."""
        stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RunWorkflow(
                workflow_pb2.RunWorkflowRequest(workflow=workflow_pb2.Workflow(topic="rag")),
                timeout=10,
            )
        assert bad_request_fields(caught.value) == {"workflow.kind"}
