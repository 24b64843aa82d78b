"""What executes workflows for the servicer: the local engine (asyncio tasks in the gateway)
or the Temporal one (a durable workflow per Ponder workflow, run by workers)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import Filter
from ponder_gateway.parameters import RunParameters
from ponder_gateway.record_plan import Page
from ponder_gateway.workflows.events import Event
from ponder_gateway.workflows.pipeline import CacheLookup
from ponder_runtime.channels import call_timeout


# Called once when a created workflow ends, with its final record (or None).
OnDone = Callable[[workflow_pb2.Workflow | None], Awaitable[None]]
# Counts a workflow in against the caller's budgets; returns what counts it out.
Admit = Callable[[], Callable[[], None]]
# Longest a create waits for its cache lookup (the caller's deadline may leave less): past
# it the workflow is created all the same, and its run asks again with the lookup's own
# timeout (as a run did before creates were looked up). A create replies at once: a hung
# embedding service must not hold it for the lookup's own timeout. At least the channel
# breaker's slow-call time (1 s), so that a hung service opens the breaker, after which
# lookups fail at once (the embedding service unavailable: the run is told, not asked).
CREATE_LOOKUP_SECONDS = 1.0


def create_lookup_timeout(
    context: grpc.aio.ServicerContext[Any, Any] | None,
) -> Callable[[float], float]:
    """A create's cache lookup timeout: the lookup's own, at most CREATE_LOOKUP_SECONDS,
    shortened to the caller's remaining deadline."""
    return lambda seconds: call_timeout(context, min(seconds, CREATE_LOOKUP_SECONDS))


@dataclass(frozen=True, slots=True)
class Answered:
    """What a create's cache lookup found before anything was recorded: the workflow it
    answered and recorded (a hit), or else the lookup (a miss, or the embedding service
    unavailable) that its run takes as its cache_lookup step instead of asking again; neither
    when it was not looked up (cache policy REFRESH or BYPASS, or an engine that does not) or
    the lookup ran out of time (the run asks again)."""

    workflow: workflow_pb2.Workflow | None = None
    lookup: CacheLookup | None = None


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
        looked_up: CacheLookup | None = None,
    ) -> workflow_pb2.Workflow:
        """Run a workflow of `tenant` (with `workflow_id`, or a random one) to its end;
        PonderError when it fails (recorded FAILED). `looked_up`: its cache lookup, made
        before (`recalled`: its cache_lookup step, the cache not asked again)."""
        ...

    async def remembers(self, topic: str, params: RunParameters, tenant: str = "") -> bool:
        """Whether this process already holds the verified cached answer of exactly this
        request (the semantic cache's in-process first level): such a request is answered at
        once, as a workflow of its own, and never joins an identical running one."""
        ...

    async def recalled(
        self, topic: str, params: RunParameters, tenant: str = ""
    ) -> CacheLookup | None:
        """The lookup of a request `remembers` (a first-level hit, counted as a lookup), for
        the run that answers it to take over; None when this process holds no answer (policy
        USE only)."""
        ...

    async def answered(
        self,
        topic: str,
        params: RunParameters,
        workflow_id: str = "",
        *,
        tenant: str = "",
        admit: Admit | None = None,
        context: grpc.aio.ServicerContext[Any, Any] | None = None,
    ) -> Answered:
        """A workflow to create, looked up in the cache first (policy USE; its first level,
        then the embedding service, within CREATE_LOOKUP_SECONDS and the caller's deadline):
        on a hit answered and recorded before the reply with one store write (its final
        record; no PENDING record, no events: a watcher gets its end from the record),
        counted in by `admit` meanwhile; otherwise nothing is recorded, `admit` is not called,
        and the lookup is returned for `create` to carry into the run (unless it ran out of
        time). AlreadyExistsError as `create`."""
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
        looked_up: CacheLookup | None = None,
    ) -> workflow_pb2.Workflow:
        """Start a workflow of `tenant` in the background; returned PENDING. With `after`
        (a workflow's name) it stays PENDING until that one has ended. `on_done` runs once
        when it ends, with its final record (None when this gateway stopped following it):
        access (the caller's workflow budget), coalescing and the daily budget. `looked_up`:
        its cache lookup, made by `answered` (its cache_lookup step, not asked again)."""
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
