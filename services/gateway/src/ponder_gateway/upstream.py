"""Stubs of the downstream services and the mapping of their failures to Ponder errors."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_runtime import (
    DeadlineExceededError,
    FailedPreconditionError,
    PonderError,
    UnavailableError,
)


@dataclass(frozen=True, slots=True)
class Upstreams:
    """Client stubs of research, embedding and reflection."""

    research: research_grpc.ResearchServiceStub
    embedding: embedding_grpc.EmbeddingServiceStub
    reflection: reflection_grpc.ReflectionServiceStub


def upstream_error(step: str, exc: grpc.aio.AioRpcError) -> PonderError:
    """The error a workflow reports when the `step` call failed with `exc`."""
    code = exc.code()
    message = f"{step} failed: {code.name}: {exc.details()}"
    metadata = {"step": step, "upstream_code": code.name}
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(message, metadata=metadata)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return UnavailableError(message, metadata=metadata)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPreconditionError(message, metadata=metadata)
    return PonderError(message, metadata=metadata)
