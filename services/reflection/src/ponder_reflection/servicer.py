"""gRPC servicer of ponder.reflection.v1.ReflectionService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder_reflection.convert import (
    STEP_KIND_TO_PROTO,
    outcome_to_proto,
    source_document,
    source_documents,
    step_from_proto,
    step_to_proto,
)
from ponder_reflection.loop import reflect, run_reflection, validate_spec
from ponder_reflection.provider import ReflectionProvider
from ponder_reflection.types import (
    Completed,
    ReflectionSpec,
    StepFinished,
    StepStarted,
    TextDelta,
)
from ponder_runtime import FieldViolation, InvalidArgumentError
from ponder_runtime.deadlines import set_deadline


# One source's text; beyond it a summary is a whole paper, which belongs in a library instead.
MAX_DOCUMENT_CHARS = 20_000


class ReflectionServicer(reflection_grpc.ReflectionServiceServicer):
    """Runs the bounded reflection loop on the configured provider."""

    def __init__(
        self,
        provider: ReflectionProvider,
        *,
        default_max_iterations: int,
        default_score_threshold: float,
        default_deadline: float,
    ) -> None:
        self._provider = provider
        self._default_max_iterations = default_max_iterations
        self._default_score_threshold = default_score_threshold
        self._default_deadline = default_deadline

    def _spec(
        self, request: reflection_pb2.ReflectRequest | reflection_pb2.StreamReflectRequest
    ) -> ReflectionSpec:
        """The loop's spec with defaults applied; INVALID_ARGUMENT listing every bad field."""
        spec = ReflectionSpec(
            topic=request.topic.strip() or request.topic,
            documents=tuple(source_document(doc) for doc in request.documents),
            max_iterations=request.max_iterations or self._default_max_iterations,
            score_threshold=request.score_threshold or self._default_score_threshold,
            completed=tuple(
                step_from_proto(step) for step in getattr(request, "completed_steps", ())
            ),
        )
        violations = validate_spec(spec)
        for index, doc in enumerate(request.documents):
            if len(doc.summary) > MAX_DOCUMENT_CHARS:
                violations.append(
                    (
                        f"documents[{index}].summary",
                        f"must be at most {MAX_DOCUMENT_CHARS} characters, got {len(doc.summary)}",
                    )
                )
        if violations:
            raise InvalidArgumentError([FieldViolation(f, d) for f, d in violations])
        # Validated per document (field paths match the request); read per passage.
        return replace(spec, documents=source_documents(request.documents))

    async def Reflect(
        self, request: reflection_pb2.ReflectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> reflection_pb2.ReflectResponse:
        """Run the loop to completion."""
        spec = self._spec(request)
        set_deadline(context.time_remaining() or self._default_deadline)
        outcome = await reflect(self._provider, spec)
        return outcome_to_proto(outcome)

    async def StreamReflect(
        self,
        request: reflection_pb2.StreamReflectRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[reflection_pb2.StreamReflectResponse]:
        """Run the loop, streaming each step, the model's text as it comes, and the result."""
        spec = self._spec(request)
        set_deadline(context.time_remaining() or self._default_deadline)
        async for event in run_reflection(self._provider, spec, stream_text=True):
            if isinstance(event, StepStarted):
                yield reflection_pb2.StreamReflectResponse(
                    step_started=reflection_pb2.ReflectionStep(
                        kind=STEP_KIND_TO_PROTO[event.kind], iteration=event.iteration
                    )
                )
            elif isinstance(event, TextDelta):
                yield reflection_pb2.StreamReflectResponse(text_delta=event.text)
            elif isinstance(event, StepFinished):
                yield reflection_pb2.StreamReflectResponse(step_finished=step_to_proto(event.step))
            elif isinstance(event, Completed):
                yield reflection_pb2.StreamReflectResponse(
                    completed=outcome_to_proto(event.outcome)
                )
