"""How a record store answers a ListWorkflows filter: the index to walk (tenant, state or kind
equality, a create_time range) and the rest of the filter, checked on a bounded number of index
entries per page (a page may then come back short, with a token to go on, as AIP-158 allows)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import EVERYTHING, All, Compare, Filter, Owner


# Index entries a page may examine for the part of a filter no index answers (topic, OR, NOT,
# !=, update_time, a second equality): the page ends there with a token to resume. SQLite
# checks them in C; Redis reads each record into the gateway, so it looks at fewer.
SCAN_LIMIT = 2000
REDIS_SCAN_LIMIT = 500

Position = tuple[int, str]  # (create_time ns, name): the keyset order, newest first


@dataclass(frozen=True, slots=True)
class Plan:
    """The index part of a filter (`tenant`, `state` or `kind` equality, create_time bounds,
    inclusive, in ns) and what is left to check on each entry (`rest`)."""

    tenant: str | None = None
    state: int | None = None
    kind: int | None = None
    low: int | None = None
    high: int | None = None
    rest: Filter = EVERYTHING
    empty: bool = False  # contradictory bounds or tenants: nothing can match

    @property
    def exact(self) -> bool:
        """Whether the index answers the whole filter (no bounded scan needed)."""
        return self.rest == EVERYTHING

    @property
    def index(self) -> str:
        """The name of the index used (documentation and tests)."""
        base = "state" if self.state is not None else "kind" if self.kind is not None else "order"
        return f"{'tenant_' if self.tenant is not None else ''}{base}"


@dataclass(slots=True)
class Page:
    """A page of records and where the next one starts (None: nothing more)."""

    workflows: list[workflow_pb2.Workflow] = field(default_factory=list)
    next_after: Position | None = None


def _conjuncts(tree: Filter) -> list[Filter]:
    if isinstance(tree, All):
        return [part for operand in tree.operands for part in _conjuncts(operand)]
    return [tree]


def plan(where: Filter) -> Plan:
    """Split `where` into what an index answers and the rest."""
    tenant: str | None = None
    state: int | None = None
    kind: int | None = None
    low: int | None = None
    high: int | None = None
    rest: list[Filter] = []
    empty = False
    for part in _conjuncts(where):
        if isinstance(part, Owner):
            if tenant is not None and tenant != part.tenant:
                empty = True
            tenant = part.tenant
        elif (
            isinstance(part, Compare) and part.op == "=" and part.field == "state" and state is None
        ):
            state = part.value
        elif isinstance(part, Compare) and part.op == "=" and part.field == "kind" and kind is None:
            kind = part.value
        elif isinstance(part, Compare) and part.field == "create_time" and part.op != "!=":
            if part.op in (">", ">=", "="):
                bound = part.value + (1 if part.op == ">" else 0)
                low = bound if low is None else max(low, bound)
            if part.op in ("<", "<=", "="):
                bound = part.value - (1 if part.op == "<" else 0)
                high = bound if high is None else min(high, bound)
        else:
            rest.append(part)
    if tenant is None:  # every tenant (an admin): the order index, the rest checked
        rest.extend(
            Compare(f, "=", v) for f, v in (("state", state), ("kind", kind)) if v is not None
        )
        state = kind = None
    if state is not None and kind is not None:  # one equality index; the other is checked
        rest.append(Compare("kind", "=", kind))
        kind = None
    if low is not None and high is not None and low > high:
        empty = True
    remainder: Filter = EVERYTHING if not rest else rest[0] if len(rest) == 1 else All(tuple(rest))
    return Plan(tenant, state, kind, low, high, remainder, empty)
