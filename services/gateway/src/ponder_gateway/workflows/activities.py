"""The calls a workflow makes: gRPC to research, embedding (rank, semantic cache) and
reflection. Used in-process by the local engine and by the Temporal worker's activities."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from opentelemetry import trace

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.cache import CacheLookup as CachedLookup
from ponder_gateway.cache import CacheTimeoutError, CacheUnavailableError, WorkflowCache
from ponder_gateway.parameters import RunParameters
from ponder_gateway.principals import DEFAULT_TENANT
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.upstream import Upstreams, upstream_error
from ponder_gateway.workflows.pipeline import CacheLookup, Ranked
from ponder_runtime import UnavailableError
from ponder_runtime.attributes import (
    CACHE_CANDIDATE,
    CACHE_REASON,
    CACHE_REASON_CATEGORY,
    CACHE_RESULT,
    CACHE_SIMILARITY,
    CACHE_VERDICT,
)


# Ask research for more candidates than we keep, so that ranking has something to choose from.
CANDIDATE_FACTOR = 3
MAX_CANDIDATES = 50

# Seconds a call may take: the step's own timeout, shortened by the caller's deadline.
Timeout = Callable[[float], float]
# Called after each reflection progress update of the step.
Progress = Callable[[workflow_pb2.Workflow, workflow_pb2.WorkflowStep], Awaitable[None]]
# Sees every event of the reflection stream (text pieces too).
StreamObserver = Callable[[reflection_pb2.StreamReflectResponse], Awaitable[None]]


def _rank_text(doc: document_pb2.Document) -> str:
    return f"{doc.title}. {doc.summary}"


def record_progress(
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


async def look_up(
    cache: WorkflowCache,
    workflow: workflow_pb2.Workflow,
    params: RunParameters,
    timeout: Timeout,
) -> CacheLookup:
    """The semantic cache's answer for the workflow's topic (its first level, then the
    embedding service's LookupCache), with what it decided and why (a miss says why too, on
    the current span as well); embedding down is a result (`unavailable`)."""
    try:
        cached = await cache.lookup(workflow.topic, params, workflow.tenant, cap=timeout)
    except CacheUnavailableError as exc:
        return CacheLookup(unavailable=str(exc), timed_out=isinstance(exc, CacheTimeoutError))
    found = _decided(cached)
    annotate(found)
    return found


async def recall(
    cache: WorkflowCache, topic: str, params: RunParameters, tenant: str = ""
) -> CacheLookup | None:
    """The semantic cache's first-level answer to exactly this request (WorkflowCache.recall)
    as a workflow's cache lookup; None when this process holds none. Not put on a span: the
    cache_lookup step that takes it over says what it decided (`annotate`)."""
    cached = await cache.recall(topic, params, tenant)
    return None if cached is None else _decided(cached)


def _decided(cached: CachedLookup) -> CacheLookup:
    """What the cache decided, as a workflow's cache lookup."""
    return CacheLookup(
        workflow=cached.workflow,
        similarity=cached.similarity,
        info=cached.info(),
        explanation=cached.explain(),
    )


def annotate(found: CacheLookup) -> None:
    """What a lookup decided, on the current span (the cache_lookup step's): hit or miss, the
    verdict and its reason, the candidate and its similarity."""
    span = trace.get_current_span()
    if found.info is None or not span.is_recording():
        return
    info = found.info
    verdict = workflow_pb2.CacheVerdict.Name(info.verdict).removeprefix("CACHE_VERDICT_")
    span.set_attributes(
        {
            CACHE_RESULT: "hit" if info.hit else "miss",
            CACHE_VERDICT: verdict.lower(),
            CACHE_REASON: info.reason,
            CACHE_REASON_CATEGORY: info.reason_category,
            CACHE_CANDIDATE: info.candidate_topic,
            CACHE_SIMILARITY: info.similarity,
        }
    )


class GrpcActivities:
    """The Activities of pipeline.py over gRPC stubs."""

    def __init__(
        self,
        upstreams: Upstreams,
        cache: WorkflowCache,
        settings: GatewaySettings,
        *,
        timeout: Timeout,
        progress: Progress,
        resume: tuple[reflection_pb2.ReflectionStep, ...] = (),
        on_stream: StreamObserver | None = None,
        looked_up: CacheLookup | None = None,
    ) -> None:
        self._up = upstreams
        self._looked_up = looked_up
        self._cache = cache
        self._settings = settings
        self._timeout = timeout
        self._progress = progress
        self._resume = resume
        self._on_stream = on_stream

    async def lookup_cache(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> CacheLookup:
        """The semantic cache's answer for the topic, with what it decided and why (a miss
        says why too); embedding down is a result. A lookup made before the workflow was
        recorded (`looked_up`) is its answer: the cache is not asked twice."""
        if self._looked_up is not None:
            annotate(self._looked_up)  # the step's span says what it decided, as when asked
            return self._looked_up
        return await look_up(self._cache, workflow, params, self._timeout)

    async def research(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> research_pb2.SearchSourcesResponse:
        """SearchSources for the topic."""
        request = research_pb2.SearchSourcesRequest(
            query=workflow.topic,
            sources=params.sources,
            max_results=min(MAX_CANDIDATES, params.max_sources * CANDIDATE_FACTOR),
            tenant=workflow.tenant or DEFAULT_TENANT,  # its uploaded libraries are searched too
        )
        try:
            reply: research_pb2.SearchSourcesResponse = await self._up.research.SearchSources(
                request, timeout=self._timeout(self._settings.research_timeout_seconds)
            )
        except grpc.aio.AioRpcError as exc:
            raise upstream_error("research", exc) from exc
        return reply

    async def rank(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
    ) -> Ranked:
        """RankDocuments; embedding down is a result (the pipeline keeps research's order)."""
        request = embedding_pb2.RankDocumentsRequest(
            query=workflow.topic,
            candidates=[
                embedding_pb2.RankCandidate(id=doc.id, text=_rank_text(doc)) for doc in documents
            ],
            top_k=params.max_sources,
        )
        try:
            reply = await self._up.embedding.RankDocuments(
                request, timeout=self._timeout(self._settings.rank_timeout_seconds)
            )
        except grpc.aio.AioRpcError as exc:
            return Ranked(unavailable=exc.code().name)
        ranked = []
        for result in reply.results:
            doc = document_pb2.Document()
            doc.CopyFrom(documents[result.index])
            doc.score = result.score
            ranked.append(doc)
        return Ranked(documents=ranked, model=reply.model)

    async def reflect(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
        step: workflow_pb2.WorkflowStep,
    ) -> reflection_pb2.ReflectResponse:
        """Stream the reflection; each draft/critique/refine start and end updates `step`.
        Resuming (`resume`: the steps an interrupted run finished), those steps come back
        without a model call, and are not reported again."""
        summary_only = params.kind == workflow_pb2.WORKFLOW_KIND_RESEARCH
        request = reflection_pb2.StreamReflectRequest(
            topic=workflow.topic,
            documents=documents,
            max_iterations=1 if summary_only else params.max_iterations,
            score_threshold=params.score_threshold,
            completed_steps=self._resume,
            max_tokens=params.max_tokens,
            max_cost_usd=params.max_cost_usd,
        )
        replayed = 2 * len(self._resume)  # a start and an end each
        reply: reflection_pb2.ReflectResponse | None = None
        try:
            async for event in self._up.reflection.StreamReflect(
                request, timeout=self._timeout(self._settings.reflection_timeout_seconds)
            ):
                which = event.WhichOneof("event")
                if which == "completed":
                    reply = event.completed
                elif which in ("step_started", "step_finished"):
                    record_progress(step, getattr(event, which), which == "step_finished")
                    if replayed > 0:
                        replayed -= 1
                        continue
                    if self._on_stream is not None:
                        await self._on_stream(event)
                    await self._progress(workflow, step)
                    continue
                if self._on_stream is not None:
                    await self._on_stream(event)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error("reflection", exc) from exc
        if reply is None:
            raise UnavailableError("the reflection stream ended without a result")
        return reply

    async def store_cache(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> str:
        """StoreCache of the finished workflow; "" or why not."""
        try:
            await self._cache.store(workflow, params, cap=self._timeout)
        except CacheUnavailableError as exc:
            return str(exc)
        return ""
