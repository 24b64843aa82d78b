"""One workflow, top to bottom: cache lookup -> research -> rank -> reflect -> cache store.

The orchestration is deterministic: every call that leaves the process goes through
`Activities` (gRPC to research, embedding and reflection), every record and event through the
`Recorder`, and time comes from the recorder's clock. So the same code runs in the gateway
(engine_local.py) and as a Temporal workflow (engine_temporal.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.parameters import RunParameters
from ponder_gateway.workflows.recorder import Recorder
from ponder_runtime import FailedPreconditionError, PonderError


# gRPC status codes, by number (no grpc import here: this module runs in Temporal's sandbox).
CANCELLED_CODE = 1
ABORTED_CODE = 10


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """A cached answer for the topic (`workflow` None on a miss), or why there is none: the
    lookup's decision for the workflow's `cache` field (`info`) and in words (`explanation`,
    e.g. `rejected: polarity differs ("fail")`), or `unavailable` (`timed_out`: the embedding
    service did not answer in the time the lookup had; it may only be slow)."""

    workflow: workflow_pb2.Workflow | None = None
    similarity: float = 0.0
    unavailable: str = ""
    info: workflow_pb2.CacheInfo | None = None
    explanation: str = ""
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class Ranked:
    """The documents kept, by similarity (`model`), or in research order when `unavailable`."""

    documents: list[document_pb2.Document] = field(default_factory=list)
    model: str = ""
    unavailable: str = ""


class Activities(Protocol):
    """The calls a workflow makes to the other services."""

    async def lookup_cache(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> CacheLookup:
        """Look the topic up in the semantic cache (never raises: unavailable is a result)."""
        ...

    async def research(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> research_pb2.SearchSourcesResponse:
        """Search the sources; PonderError when research fails."""
        ...

    async def rank(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
    ) -> Ranked:
        """Rank by embedding similarity, keeping `max_sources` (never raises)."""
        ...

    async def reflect(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
        step: workflow_pb2.WorkflowStep,
    ) -> reflection_pb2.ReflectResponse:
        """Reflect on the documents, reporting progress on `step` as it goes; PonderError
        when reflection fails."""
        ...

    async def store_cache(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> str:
        """Keep the finished workflow in the cache; "" or why it could not."""
        ...


def cancelled(workflow: workflow_pb2.Workflow) -> None:
    """How a workflow cancelled by its caller ends."""
    workflow.state = workflow_pb2.WORKFLOW_STATE_CANCELLED
    workflow.error.code = CANCELLED_CODE
    workflow.error.message = "the workflow was cancelled"


def interrupted(workflow: workflow_pb2.Workflow) -> None:
    """How a workflow cut short by its gateway shutting down ends."""
    workflow.state = workflow_pb2.WORKFLOW_STATE_FAILED
    workflow.error.code = ABORTED_CODE
    workflow.error.message = (
        "the gateway shut down before the workflow finished (grace period over)"
    )


class Pipeline:
    """Runs one workflow through the steps, recording each."""

    def __init__(
        self,
        activities: Activities,
        recorder: Recorder,
        *,
        on_cancel: Callable[[workflow_pb2.Workflow], None] = cancelled,
    ) -> None:
        self._do = activities
        self._record = recorder
        self._on_cancel = on_cancel

    async def run(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> workflow_pb2.Workflow:
        """Answer from the cache or run the steps, and record the outcome; PonderError on
        failure (recorded FAILED with the reason), CancelledError when cancelled."""
        try:
            # Inside the try: a cancel landing on this first write is recorded CANCELLED too
            # (it used to leave the record PENDING).
            await self._record.running(workflow, save=False)
            if not await self._from_cache(workflow, params):
                # Saved RUNNING only when it runs: a cache hit's one write is its final record.
                await self._record.running(workflow, save=True)
                await self._steps(workflow, params)
                await self._store_in_cache(workflow, params)
        except PonderError as exc:
            workflow.state = workflow_pb2.WORKFLOW_STATE_FAILED
            workflow.error.CopyFrom(exc.to_rpc_status())
            await self._record.finished(workflow)
            raise
        except asyncio.CancelledError:
            self._on_cancel(workflow)
            await asyncio.shield(self._record.finished(workflow))
            raise
        await self._record.finished(workflow)
        return workflow

    async def answer(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> bool:
        """Answer from the cache alone: True once the hit is recorded (its final record, the
        one write), False on a miss with nothing recorded (`workflow` is then half-way: the
        caller drops it and runs a fresh one). Never runs the steps."""
        await self._record.running(workflow, save=False)
        if not await self._from_cache(workflow, params):
            return False
        await self._record.finished(workflow)
        return True

    async def _from_cache(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> bool:
        policy = params.cache_policy
        async with self._record.step(workflow, "cache_lookup") as step:
            if policy != workflow_pb2.CACHE_POLICY_USE:
                step.state = workflow_pb2.STEP_STATE_SKIPPED
                step.message = workflow_pb2.CachePolicy.Name(policy)
                return False
            found = await self._do.lookup_cache(workflow, params)
            if found.unavailable:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = f"embedding service unavailable ({found.unavailable}): cache skipped"
                workflow.warnings.append(f"cache: {step.message}")
                return False
            info = found.info or workflow_pb2.CacheInfo(
                hit=found.workflow is not None,
                similarity=found.similarity,
                source_workflow=found.workflow.name if found.workflow is not None else "",
            )
            workflow.cache.CopyFrom(info)  # a miss says why too
            why = f" ({found.explanation})" if found.explanation else ""
            if found.workflow is None:
                step.message = f"miss{why}"
                return False
            explained = f"; {found.explanation}" if found.explanation else ""
            step.message = f"hit (similarity {found.similarity:.3f}{explained})"
        workflow.result.CopyFrom(found.workflow.result)
        workflow.state = workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        workflow.end_time.CopyFrom(self._record.now())
        started = workflow.create_time.ToNanoseconds()
        workflow.execution_time.FromNanoseconds(workflow.end_time.ToNanoseconds() - started)
        return True

    async def _steps(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> None:
        started = self._record.now().ToNanoseconds()
        try:
            found = await self._research(workflow, params)
            documents = await self._rank(workflow, params, found)
            reflection = await self._reflect(workflow, params, documents)
        finally:
            workflow.end_time.CopyFrom(self._record.now())
            workflow.update_time.CopyFrom(workflow.end_time)
            workflow.execution_time.FromNanoseconds(workflow.end_time.ToNanoseconds() - started)
        workflow.result.CopyFrom(
            workflow_pb2.WorkflowResult(
                text=reflection.text,
                citations=reflection.citations,
                sources=documents,
                source_statuses=found.source_statuses,
                iterations=reflection.iterations,
                score=reflection.score,
                usage=reflection.usage,
                provider=reflection.provider,
                model=reflection.model,
                offline=reflection.offline,
                stop_reason=reflection.stop_reason,
            )
        )
        workflow.usage.CopyFrom(reflection.usage)  # what this run spent (a cache hit: nothing)
        workflow.warnings.extend(reflection.warnings)
        workflow.state = workflow_pb2.WORKFLOW_STATE_SUCCEEDED

    async def _research(
        self, workflow: workflow_pb2.Workflow, params: RunParameters
    ) -> research_pb2.SearchSourcesResponse:
        async with self._record.step(workflow, "research") as step:
            found = await self._do.research(workflow, params)
            for status in found.source_statuses:
                if status.state != research_pb2.SOURCE_STATE_OK:
                    source = document_pb2.SourceKind.Name(status.source)
                    state = research_pb2.SourceState.Name(status.state)
                    workflow.warnings.append(f"source {source}: {state}: {status.message}")
            if not found.documents:
                raise FailedPreconditionError(
                    "no sources found for the topic; try other words or more sources",
                    metadata={"workflow": workflow.name},
                )
            step.message = f"{len(found.documents)} candidate documents"
            step.document_count = len(found.documents)
            return found

    async def _rank(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        found: research_pb2.SearchSourcesResponse,
    ) -> list[document_pb2.Document]:
        """The `max_sources` documents most similar to the topic: research's order when it
        already ranked by embedding similarity, else ranked by embedding; on an embedding
        failure the research order, noted (the workflow goes on)."""
        documents = list(found.documents)
        async with self._record.step(workflow, "rank") as step:
            if found.ranking == research_pb2.RANKING_METHOD_EMBEDDING_SIMILARITY:
                kept = documents[: params.max_sources]
                step.message = (
                    f"kept {len(kept)} of {len(documents)}, "
                    "ranked by embedding similarity in research"
                )
                step.document_count = len(kept)
                return kept
            ranked = await self._do.rank(workflow, params, documents)
            if ranked.unavailable:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = f"embedding unavailable ({ranked.unavailable}): research order kept"
                workflow.warnings.append(f"rank: {step.message}")
                step.document_count = min(len(documents), params.max_sources)
                return documents[: params.max_sources]
            step.message = (
                f"kept {len(ranked.documents)} of {len(documents)} by similarity ({ranked.model})"
            )
            step.document_count = len(ranked.documents)
            return ranked.documents

    async def _reflect(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        documents: list[document_pb2.Document],
    ) -> reflection_pb2.ReflectResponse:
        summary_only = params.kind == workflow_pb2.WORKFLOW_KIND_RESEARCH
        async with self._record.step(workflow, "summarize" if summary_only else "reflect") as step:
            reply = await self._do.reflect(workflow, params, documents, step)
            step.iteration = len(reply.iterations)
            del step.iteration_scores[:]
            step.iteration_scores.extend(done.critique.score for done in reply.iterations)
            step.message = (
                f"{len(reply.iterations)} iteration(s), score {reply.score:.1f}, "
                f"{reply.provider}/{reply.model}"
            )
            return reply

    async def _store_in_cache(self, workflow: workflow_pb2.Workflow, params: RunParameters) -> None:
        if params.cache_policy == workflow_pb2.CACHE_POLICY_BYPASS:
            return
        if workflow.result.stop_reason == reflection_pb2.STOP_REASON_BUDGET_EXHAUSTED:
            async with self._record.step(workflow, "cache_store") as step:
                step.state = workflow_pb2.STEP_STATE_SKIPPED
                step.message = "stopped by its budget: not cached (a full run may answer better)"
            return
        async with self._record.step(workflow, "cache_store") as step:
            unavailable = await self._do.store_cache(workflow, params)
            if unavailable:
                step.state = workflow_pb2.STEP_STATE_FAILED
                step.message = f"embedding service unavailable ({unavailable}): result not cached"
                workflow.warnings.append(f"cache: {step.message}")
