"""Ownership of workflows: each records the tenant that created it; a caller sees only its own
tenant's workflows (another tenant's is NOT_FOUND, exactly like one that does not exist, so
existence does not leak); a principal with the `admin` scope sees every tenant's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import All, Filter, Owner
from ponder_gateway.principals import Principal
from ponder_gateway.store import tenant_of
from ponder_runtime import NotFoundError


def stamp(workflow: workflow_pb2.Workflow, principal: Principal) -> workflow_pb2.Workflow:
    """Record the caller's tenant as the new workflow's owner."""
    workflow.tenant = principal.tenant
    return workflow


def not_found(name: str) -> NotFoundError:
    """The error for a workflow that does not exist, or is not the caller's to see."""
    return NotFoundError(f"{name} does not exist", metadata={"name": name})


async def owned(
    get: Callable[[str], Awaitable[workflow_pb2.Workflow]], name: str, principal: Principal
) -> workflow_pb2.Workflow:
    """The workflow `name` if the principal may see it; NotFoundError otherwise."""
    workflow = await get(name)
    if not principal.owns(tenant_of(workflow)):
        raise not_found(name)
    return workflow


def scoped(where: Filter, principal: Principal) -> Filter:
    """A list filter narrowed to the principal's tenant (admins: every tenant)."""
    return where if principal.admin else All((Owner(principal.tenant), where))


def replay_key(key: tuple[str, bytes], principal: Principal) -> tuple[str, bytes]:
    """A replay-memo key of one tenant: an identical request from another tenant never gets
    this tenant's workflow back."""
    return f"{principal.tenant}/{key[0]}", key[1]
