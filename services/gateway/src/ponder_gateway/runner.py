"""Runs a workflow: research -> rank (embedding) -> reflect, recording each step."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import grpc
from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode, Tracer

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.parameters import RunParameters
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.upstream import Upstreams, upstream_error
from ponder_runtime import FailedPreconditionError, UnavailableError, call_timeout
from ponder_runtime.attributes import (
    STEP_MESSAGE,
    STEP_STATE,
    WORKFLOW_ID,
    WORKFLOW_KIND,
    WORKFLOW_OUTCOME,
    WORKFLOW_STEP,
)
from ponder_runtime.protobuf import timestamp


logger = logging.getLogger(__name__)

# Ask research for more candidates than we keep, so that ranking has something to choose from.
CANDIDATE_FACTOR = 3
MAX_CANDIDATES = 50


def _rank_text(doc: document_pb2.Document) -> str:
    return f"{doc.title}. {doc.summary}"


StepObserver = Callable[[workflow_pb2.Workflow, workflow_pb2.WorkflowStep], None]


def _record_progress(
    step: workflow_pb2.WorkflowStep, event: reflection_pb2.ReflectionStep, finished: bool
) -> None:
    """Put one reflection step's progress on the workflow step: a watcher-friendly message,
    e.g. "iteration 1: critique done, score 7.5", the iteration, and each finished critique's
    score."""
    kind = reflection_pb2.ReflectionStepKind.Name(event.kind).removeprefix("REFLECTION_STEP_KIND_")
    progress = "done" if finished else "started"
    step.message = f"iteration {event.iteration}: {kind.lower()} {progress}"
    step.iteration = event.iteration
    if finished and event.HasField("critique"):
        step.message += f", score {event.critique.score:.1f}"
        step.iteration_scores.append(event.critique.score)


def record_trace_id(workflow: workflow_pb2.Workflow) -> None:
    """Put the current trace id on the workflow (so a user can quote it)."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        workflow.trace_id = format(span_context.trace_id, "032x")


class WorkflowRunner:
    """Runs one workflow to completion against the downstream services."""

    def __init__(
        self, upstreams: Upstreams, settings: GatewaySettings, tracer: Tracer | None = None
    ) -> None:
        self._up = upstreams
        self._settings = settings
        self._tracer = tracer or trace.NoOpTracer()
        self.observer: StepObserver | None = None

    @contextlib.contextmanager
    def traced(self, workflow: workflow_pb2.Workflow) -> Iterator[Span]:
        """The workflow's span (its steps, and the calls they make, are children); its
        outcome is set from the workflow's final state."""
        kind = workflow_pb2.WorkflowKind.Name(workflow.kind).removeprefix("WORKFLOW_KIND_")
        with self._tracer.start_as_current_span(
            f"workflow {kind.lower()}",
            attributes={WORKFLOW_ID: workflow.id, WORKFLOW_KIND: kind},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            finally:
                state = workflow_pb2.WorkflowState.Name(workflow.state)
                outcome = state.removeprefix("WORKFLOW_STATE_")
                span.set_attribute(WORKFLOW_OUTCOME, outcome)
                if workflow.state != workflow_pb2.WORKFLOW_STATE_SUCCEEDED:
                    span.set_status(StatusCode.ERROR, workflow.error.message or outcome)

    def new_workflow(self, topic: str, params: RunParameters) -> workflow_pb2.Workflow:
        """A fresh PENDING workflow resource."""
        workflow_id = str(uuid.uuid4())
        workflow = workflow_pb2.Workflow(
            name=f"workflows/{workflow_id}",
            id=workflow_id,
            kind=params.kind,
            topic=topic,
            state=workflow_pb2.WORKFLOW_STATE_PENDING,
            parameters=workflow_pb2.WorkflowParameters(
                sources=params.sources,
                max_sources=params.max_sources,
                max_iterations=params.max_iterations,
                score_threshold=params.score_threshold,
                cache_policy=params.cache_policy,
            ),
        )
        workflow.create_time.CopyFrom(timestamp())
        workflow.update_time.CopyFrom(workflow.create_time)
        return workflow

    async def run(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        context: grpc.aio.ServicerContext | None,
    ) -> workflow_pb2.Workflow:
        """Run `workflow` in place; raise PonderError when it cannot produce a result."""
        record_trace_id(workflow)
        started = time.perf_counter()
        workflow.state = workflow_pb2.WORKFLOW_STATE_RUNNING
        try:
            documents, statuses, ranked = await self._research(workflow, params, context)
            documents = await self._rank(workflow, params, documents, ranked, context)
            reflection = await self._reflect(workflow, params, documents, context)
        finally:
            workflow.execution_time.FromNanoseconds(round((time.perf_counter() - started) * 1e9))
            workflow.end_time.CopyFrom(timestamp())
            workflow.update_time.CopyFrom(workflow.end_time)
        workflow.result.CopyFrom(
            workflow_pb2.WorkflowResult(
                text=reflection.text,
                citations=reflection.citations,
                sources=documents,
                source_statuses=statuses,
                iterations=reflection.iterations,
                score=reflection.score,
                usage=reflection.usage,
                provider=reflection.provider,
                model=reflection.model,
                offline=reflection.offline,
            )
        )
        workflow.warnings.extend(reflection.warnings)
        workflow.state = workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        logger.info(
            "workflow succeeded",
            extra={
                "workflow": workflow.name,
                "sources": len(documents),
                "seconds": workflow.execution_time.ToNanoseconds() / 1e9,
            },
        )
        return workflow

    @contextlib.contextmanager
    def _step(
        self, workflow: workflow_pb2.Workflow, name: str
    ) -> Iterator[workflow_pb2.WorkflowStep]:
        """Record a step: RUNNING while the body runs, then SUCCEEDED, or FAILED on an error;
        traced as a child span of the workflow's."""
        workflow.steps.add(name=name, state=workflow_pb2.STEP_STATE_RUNNING, start_time=timestamp())
        step = workflow.steps[-1]
        self._notify(workflow, step)
        with self._tracer.start_as_current_span(
            f"step {name}", attributes={WORKFLOW_STEP: name}, set_status_on_exception=False
        ) as span:
            try:
                yield step
            except BaseException as exc:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = step.message or str(exc) or type(exc).__name__
                raise
            finally:
                step.end_time.CopyFrom(timestamp())
                if step.state == workflow_pb2.STEP_STATE_RUNNING:
                    step.state = workflow_pb2.STEP_STATE_SUCCEEDED
                state = workflow_pb2.StepState.Name(step.state).removeprefix("STEP_STATE_")
                span.set_attributes({STEP_STATE: state, STEP_MESSAGE: step.message})
                if step.state == workflow_pb2.STEP_STATE_FAILED:
                    span.set_status(StatusCode.ERROR, step.message)
                self._notify(workflow, step)

    def _notify(self, workflow: workflow_pb2.Workflow, step: workflow_pb2.WorkflowStep) -> None:
        if self.observer is not None:
            self.observer(workflow, step)

    def step(
        self, workflow: workflow_pb2.Workflow, name: str
    ) -> contextlib.AbstractContextManager[workflow_pb2.WorkflowStep]:
        """Record a step of `workflow` (the same way the runner's own steps are)."""
        return self._step(workflow, name)

    async def _research(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        context: grpc.aio.ServicerContext | None,
    ) -> tuple[list[document_pb2.Document], list[research_pb2.SourceStatus], bool]:
        """Search; also says whether research already ranked by embedding similarity."""
        with self._step(workflow, "research") as step:
            request = research_pb2.SearchSourcesRequest(
                query=workflow.topic,
                sources=params.sources,
                max_results=min(MAX_CANDIDATES, params.max_sources * CANDIDATE_FACTOR),
            )
            try:
                reply = await self._up.research.SearchSources(
                    request, timeout=call_timeout(context, self._settings.research_timeout_seconds)
                )
            except grpc.aio.AioRpcError as exc:
                raise upstream_error("research", exc) from exc
            for status in reply.source_statuses:
                if status.state != research_pb2.SOURCE_STATE_OK:
                    source = document_pb2.SourceKind.Name(status.source)
                    state = research_pb2.SourceState.Name(status.state)
                    workflow.warnings.append(f"source {source}: {state}: {status.message}")
            if not reply.documents:
                raise FailedPreconditionError(
                    "no sources found for the topic; try other words or more sources",
                    metadata={"workflow": workflow.name},
                )
            step.message = f"{len(reply.documents)} candidate documents"
            step.document_count = len(reply.documents)
            ranked = reply.ranking == research_pb2.RANKING_METHOD_EMBEDDING_SIMILARITY
            return list(reply.documents), list(reply.source_statuses), ranked

    async def _rank(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
        research_ranked: bool,
        context: grpc.aio.ServicerContext | None,
    ) -> list[document_pb2.Document]:
        """Keep the `max_sources` documents most similar to the topic: research's order when it
        already ranked by embedding similarity, else ranked here; on an embedding failure keep
        the research order and note it (the workflow goes on)."""
        with self._step(workflow, "rank") as step:
            if research_ranked:
                kept = documents[: params.max_sources]
                step.message = (
                    f"kept {len(kept)} of {len(documents)}, "
                    "ranked by embedding similarity in research"
                )
                step.document_count = len(kept)
                return kept
            request = embedding_pb2.RankDocumentsRequest(
                query=workflow.topic,
                candidates=[
                    embedding_pb2.RankCandidate(id=doc.id, text=_rank_text(doc))
                    for doc in documents
                ],
                top_k=params.max_sources,
            )
            try:
                reply = await self._up.embedding.RankDocuments(
                    request, timeout=call_timeout(context, self._settings.rank_timeout_seconds)
                )
            except grpc.aio.AioRpcError as exc:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = f"embedding unavailable ({exc.code().name}): research order kept"
                workflow.warnings.append(f"rank: {step.message}")
                step.document_count = min(len(documents), params.max_sources)
                return documents[: params.max_sources]
            ranked = []
            for result in reply.results:
                doc = document_pb2.Document()
                doc.CopyFrom(documents[result.index])
                doc.score = result.score
                ranked.append(doc)
            step.message = f"kept {len(ranked)} of {len(documents)} by similarity ({reply.model})"
            step.document_count = len(ranked)
            return ranked

    async def _reflect(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
        context: grpc.aio.ServicerContext | None,
    ) -> reflection_pb2.ReflectResponse:
        """Stream the reflection, so that watchers see its draft/critique/refine progress."""
        summary_only = params.kind == workflow_pb2.WORKFLOW_KIND_RESEARCH
        with self._step(workflow, "summarize" if summary_only else "reflect") as step:
            request = reflection_pb2.StreamReflectRequest(
                topic=workflow.topic,
                documents=documents,
                max_iterations=1 if summary_only else params.max_iterations,
                score_threshold=params.score_threshold,
            )
            reply: reflection_pb2.ReflectResponse | None = None
            try:
                async for event in self._up.reflection.StreamReflect(
                    request,
                    timeout=call_timeout(context, self._settings.reflection_timeout_seconds),
                ):
                    which = event.WhichOneof("event")
                    if which == "completed":
                        reply = event.completed
                    elif which in ("step_started", "step_finished"):
                        _record_progress(step, getattr(event, which), which == "step_finished")
                        self._notify(workflow, step)
            except grpc.aio.AioRpcError as exc:
                raise upstream_error("reflection", exc) from exc
            if reply is None:
                raise UnavailableError("the reflection stream ended without a result")
            step.iteration = len(reply.iterations)
            del step.iteration_scores[:]
            step.iteration_scores.extend(done.critique.score for done in reply.iterations)
            step.message = (
                f"{len(reply.iterations)} iteration(s), score {reply.score:.1f}, "
                f"{reply.provider}/{reply.model}"
            )
            return reply
