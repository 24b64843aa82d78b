"""Thin counting wrappers of a real workflow store and event log (each save is one commit on
SQLite, one script call on Redis; each append one event write), the LookupCache calls the
embedding service served, and a WorkflowService on a given engine served on a real socket, in
front of the in-process research, embedding and reflection services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.trace import SpanKind

from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.cache import WorkflowCache
from ponder_gateway.filters import Filter
from ponder_gateway.metrics import no_op_meter
from ponder_gateway.record_plan import Page
from ponder_gateway.servicer import WorkflowServicer
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import WorkflowStore
from ponder_gateway.upstream import Upstreams
from ponder_gateway.wiring import workflow_cache
from ponder_gateway.workflows.engine import Engine
from ponder_gateway.workflows.events import Event, EventLog
from tests.conftest import InProcessStack
from tests.support.gateways import gateway_settings


LOOKUP_CACHE = "/ponder.embedding.v1.EmbeddingService/LookupCache"


class CountingStore:
    """A WorkflowStore passing every call on to the real one, keeping the state of each
    record it saved (one durable write each)."""

    def __init__(self, store: WorkflowStore) -> None:
        self._store = store
        self.saved: list[workflow_pb2.WorkflowState] = []

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Count, then save."""
        self.saved.append(workflow.state)
        await self._store.save(workflow)

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """The real store's record."""
        return await self._store.get(name)

    async def list(self, where: Filter, *, limit: int, after: tuple[int, str] | None) -> Page:
        """The real store's page."""
        return await self._store.list(where, limit=limit, after=after)

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """The real store's unfinished records."""
        return await self._store.unfinished()

    async def delete(self, name: str) -> bool:
        """Delete in the real store."""
        return await self._store.delete(name)

    async def insert(self, workflow: workflow_pb2.Workflow) -> None:
        """Count, then insert (a save of a new record)."""
        self.saved.append(workflow.state)
        await self._store.insert(workflow)

    async def due(
        self, before_ns: int, *, limit: int, after: tuple[int, str] | None = None
    ) -> Sequence[workflow_pb2.Workflow]:
        """The real store's due deliveries."""
        return await self._store.due(before_ns, limit=limit, after=after)

    async def purge(self, before_ns: int, *, limit: int) -> Sequence[str]:
        """Purge the real store."""
        return await self._store.purge(before_ns, limit=limit)

    async def close(self) -> None:
        """Close the real store."""
        await self._store.close()


class CountingLog:
    """An EventLog passing every call on to the real one, counting the appends."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.appended = 0

    async def append(self, name: str, event: Event) -> None:
        """Count, then append."""
        self.appended += 1
        await self._log.append(name, event)

    async def after(self, name: str, sequence: int) -> list[Event]:
        """The real log's events."""
        return await self._log.after(name, sequence)

    async def last(self, name: str) -> Event | None:
        """The real log's latest event."""
        return await self._log.last(name)

    async def delete(self, names: Sequence[str]) -> None:
        """Delete in the real log."""
        await self._log.delete(names)

    async def close(self) -> None:
        """Close the real log."""
        await self._log.close()


@dataclass
class Parts:
    """What an engine is built from: the stack's services, the semantic cache, settings."""

    upstreams: Upstreams
    cache: WorkflowCache
    settings: GatewaySettings


@contextlib.asynccontextmanager
async def gateway_parts(
    stack: InProcessStack, folder: Path, **overrides: object
) -> AsyncIterator[Parts]:
    """Stubs of the stack's services and a semantic cache with its first level on (records
    in `folder`; other settings from `overrides`)."""
    settings = gateway_settings(stack, folder, **{"cache_recent_seconds": 30.0, **overrides})
    async with (
        grpc.aio.insecure_channel(settings.research_addr) as research,
        grpc.aio.insecure_channel(settings.embedding_addr) as embedding,
        grpc.aio.insecure_channel(settings.reflection_addr) as reflection,
    ):
        up = Upstreams(
            research=research_grpc.ResearchServiceStub(research),
            embedding=embedding_grpc.EmbeddingServiceStub(embedding),
            reflection=reflection_grpc.ReflectionServiceStub(reflection),
        )
        yield Parts(up, workflow_cache(up, settings, no_op_meter()), settings)


def lookups_served(stack: InProcessStack) -> int:
    """How many LookupCache calls the stack's embedding service has answered so far (its
    server spans, made by its tracing interceptor), whoever called: a gateway or a worker."""
    return sum(
        1
        for span in stack.spans.get_finished_spans()
        if span.name == LOOKUP_CACHE and span.kind is SpanKind.SERVER
    )


@contextlib.asynccontextmanager
async def served(engine: Engine) -> AsyncIterator[workflow_grpc.WorkflowServiceStub]:
    """The WorkflowService on `engine` (no access guard: the default tenant), on a port of
    its own; a stub to it."""
    server = grpc.aio.server()
    workflow_grpc.add_WorkflowServiceServicer_to_server(WorkflowServicer(engine), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield workflow_grpc.WorkflowServiceStub(channel)
    finally:
        await server.stop(0)
