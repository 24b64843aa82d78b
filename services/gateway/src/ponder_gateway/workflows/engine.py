"""What executes workflows for the servicer: the local engine (asyncio tasks in the gateway)
or the Temporal one (a durable workflow per Ponder workflow, run by workers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import Filter
from ponder_gateway.parameters import RunParameters
from ponder_gateway.workflows.events import Event


class Engine(Protocol):
    """Run, create, read, cancel and watch workflows."""

    async def run(
        self,
        topic: str,
        params: RunParameters,
        context: grpc.aio.ServicerContext[Any, Any] | None,
        *,
        tenant: str = "",
    ) -> workflow_pb2.Workflow:
        """Run a workflow of `tenant` to its end; PonderError when it fails (recorded
        FAILED)."""
        ...

    async def create(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str = "",
        *,
        tenant: str = "",
        on_done: Callable[[], None] | None = None,
    ) -> workflow_pb2.Workflow:
        """Start a workflow of `tenant` in the background; returned PENDING. `on_done` runs
        once when it ends (access: the caller's workflow budget)."""
        ...

    async def get(self, name: str) -> workflow_pb2.Workflow:
        """A workflow by name; NotFoundError."""
        ...

    async def list(
        self, where: Filter, *, limit: int, after: tuple[int, str] | None
    ) -> list[workflow_pb2.Workflow]:
        """A page of workflows, newest first."""
        ...

    async def cancel(self, name: str) -> workflow_pb2.Workflow:
        """Cancel a pending or running workflow; FailedPreconditionError otherwise."""
        ...

    def watch(self, name: str, after_sequence: int = 0) -> AsyncIterator[Event]:
        """A snapshot (unless resuming after `after_sequence`), then events to the end."""
        ...

    async def start(self, *, stale_after: float = 0.0) -> None:
        """Get ready: connect, and resolve what a stopped process left unfinished (those
        not updated for `stale_after` seconds, with records shared by replicas)."""
        ...

    async def drain(self, grace: float) -> None:
        """Stop: let running work finish within `grace`, then close."""
        ...
