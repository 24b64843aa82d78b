"""Translation between ponder.reflection.v1 messages and the reflection domain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.type.v1 import document_pb2
from ponder_reflection.types import (
    Citation,
    Critique,
    ReflectionOutcome,
    SourceDocument,
    SourcePassage,
    Step,
    StepKind,
    StopReason,
    TokenUsage,
)
from ponder_runtime.protobuf import duration


STEP_KIND_TO_PROTO = {
    StepKind.DRAFT: reflection_pb2.REFLECTION_STEP_KIND_DRAFT,
    StepKind.CRITIQUE: reflection_pb2.REFLECTION_STEP_KIND_CRITIQUE,
    StepKind.REFINE: reflection_pb2.REFLECTION_STEP_KIND_REFINE,
}
STOP_REASON_TO_PROTO = {
    StopReason.SCORE_THRESHOLD_REACHED: reflection_pb2.STOP_REASON_SCORE_THRESHOLD_REACHED,
    StopReason.MAX_ITERATIONS_REACHED: reflection_pb2.STOP_REASON_MAX_ITERATIONS_REACHED,
    StopReason.NO_ISSUES: reflection_pb2.STOP_REASON_NO_ISSUES,
}


def source_document(doc: document_pb2.Document) -> SourceDocument:
    """The domain document the loop reads: title and summary of a ponder Document."""
    return SourceDocument(
        id=doc.id, title=doc.title, text=doc.summary, url=doc.url, authors=tuple(doc.authors)
    )


def source_documents(docs: Iterable[document_pb2.Document]) -> tuple[SourceDocument, ...]:
    """The sources the loop reads, numbered in order: one per passage of a document that has
    passages (so `[n]` points at the passage), else one per document (its summary)."""
    sources: list[SourceDocument] = []
    for doc in docs:
        whole = source_document(doc)
        if not doc.passages:
            sources.append(whole)
        for passage in doc.passages:
            found = SourcePassage(
                index=passage.index,
                text=passage.text,
                heading=passage.heading,
                page=passage.page,
                start=passage.start_offset,
                end=passage.end_offset,
            )
            sources.append(replace(whole, text=passage.text, passage=found))
    return tuple(sources)


def passage_to_proto(passage: SourcePassage) -> document_pb2.Passage:
    """ponder.type.v1.Passage of a cited passage."""
    return document_pb2.Passage(
        index=passage.index,
        text=passage.text,
        heading=passage.heading,
        page=passage.page,
        start_offset=passage.start,
        end_offset=passage.end,
    )


def citation_to_proto(citation: Citation) -> document_pb2.Citation:
    """ponder.type.v1.Citation, with the passage when a passage was cited."""
    message = document_pb2.Citation(
        index=citation.index,
        document_id=citation.document_id,
        title=citation.title,
        url=citation.url,
    )
    if citation.passage is not None:
        message.passage.CopyFrom(passage_to_proto(citation.passage))
    return message


def usage_to_proto(usage: TokenUsage) -> document_pb2.TokenUsage:
    """ponder.type.v1.TokenUsage."""
    return document_pb2.TokenUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def critique_to_proto(critique: Critique) -> reflection_pb2.Critique:
    """ponder.reflection.v1.Critique."""
    return reflection_pb2.Critique(
        score=critique.score, issues=critique.issues, suggestions=critique.suggestions
    )


def step_to_proto(step: Step) -> reflection_pb2.ReflectionStep:
    """ponder.reflection.v1.ReflectionStep for a finished step."""
    message = reflection_pb2.ReflectionStep(
        kind=STEP_KIND_TO_PROTO[step.kind],
        iteration=step.iteration,
        text=step.text,
        usage=usage_to_proto(step.usage),
        latency=duration(step.latency_s),
    )
    if step.critique is not None:
        message.critique.CopyFrom(critique_to_proto(step.critique))
    return message


STEP_KIND_FROM_PROTO = {value: key for key, value in STEP_KIND_TO_PROTO.items()}


def step_from_proto(message: reflection_pb2.ReflectionStep) -> Step:
    """The domain step of a finished ponder.reflection.v1.ReflectionStep (a resumed run's)."""
    critique = None
    if message.HasField("critique"):
        critique = Critique(
            score=message.critique.score,
            issues=tuple(message.critique.issues),
            suggestions=tuple(message.critique.suggestions),
        )
    return Step(
        kind=STEP_KIND_FROM_PROTO.get(message.kind, StepKind.DRAFT),
        iteration=message.iteration,
        text=message.text,
        critique=critique,
        usage=TokenUsage(
            prompt_tokens=message.usage.prompt_tokens,
            completion_tokens=message.usage.completion_tokens,
        ),
        latency_s=message.latency.ToNanoseconds() / 1e9,
    )


def outcome_to_proto(outcome: ReflectionOutcome) -> reflection_pb2.ReflectResponse:
    """ponder.reflection.v1.ReflectResponse for a finished loop."""
    return reflection_pb2.ReflectResponse(
        text=outcome.text,
        iterations=[
            reflection_pb2.ReflectionIteration(
                iteration=item.iteration,
                draft=item.draft,
                critique=critique_to_proto(item.critique),
            )
            for item in outcome.iterations
        ],
        steps=[step_to_proto(step) for step in outcome.steps],
        citations=[citation_to_proto(c) for c in outcome.citations],
        usage=usage_to_proto(outcome.usage),
        provider=outcome.provider,
        model=outcome.model,
        offline=outcome.offline,
        score=outcome.score,
        stop_reason=STOP_REASON_TO_PROTO[outcome.stop_reason],
        warnings=outcome.warnings,
        latency=duration(outcome.latency_s),
    )
