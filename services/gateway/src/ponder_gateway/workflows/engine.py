"""What executes workflows for the servicer: the local engine (asyncio tasks in the gateway)
or the Temporal one (a durable workflow per Ponder workflow, run by workers)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import Filter
from ponder_gateway.parameters import RunParameters
from ponder_gateway.record_plan import Page
from ponder_gateway.workflows.events import Event


# Called once when a created workflow ends, with its final record (or None).
OnDone = Callable[[workflow_pb2.Workflow | None], Awaitable[None]]
# Counts a workflow in against the caller's budgets; returns what counts it out.
Admit = Callable[[], Callable[[], None]]


class Engine(Protocol):
    """Run, create, read, cancel and watch workflows."""

    async def run(
        self,
        topic: str,
        params: RunParameters,
        context: grpc.aio.ServicerContext[Any, Any] | None,
        *,
        tenant: str = "",
        workflow_id: str = "",
    ) -> workflow_pb2.Workflow:
        """Run a workflow of `tenant` (with `workflow_id`, or a random one) to its end;
        PonderError when it fails (recorded FAILED)."""
        ...

    async def remembers(self, topic: str, params: RunParameters, tenant: str = "") -> bool:
        """Whether this process already holds the verified cached answer of exactly this
        request (the semantic cache's in-process first level): such a request is answered at
        once, as a workflow of its own, and never joins an identical running one."""
        ...

    async def answered(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str = "",
        *,
        tenant: str = "",
        admit: Admit | None = None,
    ) -> workflow_pb2.Workflow | None:
        """A workflow to create that the cache's first level answers now, answered and
        recorded before the reply with one store write (its final record; no PENDING record,
        no events: a watcher gets its end from the record), counted in by `admit` meanwhile;
        None when it must be created and run (nothing recorded, `admit` not called).
        AlreadyExistsError as `create`."""
        ...

    async def create(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str = "",
        *,
        tenant: str = "",
        on_done: OnDone | None = None,
        after: str = "",
    ) -> workflow_pb2.Workflow:
        """Start a workflow of `tenant` in the background; returned PENDING. With `after`
        (a workflow's name) it stays PENDING until that one has ended. `on_done` runs once
        when it ends, with its final record (None when this gateway stopped following it):
        access (the caller's workflow budget), coalescing and the daily budget."""
        ...

    async def get(self, name: str) -> workflow_pb2.Workflow:
        """A workflow by name; NotFoundError."""
        ...

    async def list(self, where: Filter, *, limit: int, after: tuple[int, str] | None) -> Page:
        """A page of workflows, newest first, and where the next page starts."""
        ...

    async def delete(self, name: str) -> None:
        """Delete a finished workflow and its events; NotFoundError, FailedPreconditionError
        while it is pending or running."""
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


@contextlib.contextmanager
def admitted(admit: Admit | None) -> Iterator[None]:
    """Counted in by `admit` (if given) for the body's duration."""
    release = admit() if admit is not None else None
    try:
        yield
    finally:
        if release is not None:
            release()
