"""Workflow budgets per tenant and per key: how many workflows one tenant (all its keys), or
one key, may have running or queued on this gateway at once, so that one caller cannot take
the whole capacity (PONDER_GATEWAY_MAX_RUNNING_WORKFLOWS + _MAX_QUEUED_WORKFLOWS) from the
others. Beyond a budget: RESOURCE_EXHAUSTED with RetryInfo, like the global capacity."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ponder_gateway.principals import Principal
from ponder_runtime import ResourceExhaustedError


class WorkflowBudgets:
    """In-flight workflows counted per tenant and per key (0: no limit of that kind)."""

    def __init__(self, *, per_tenant: int, per_key: int) -> None:
        self._limits = {"tenant": per_tenant, "key": per_key}
        self._counts: Counter[str] = Counter()

    def acquire(self, principal: Principal) -> Callable[[], None]:
        """Count one workflow of `principal` in; the returned function counts it out (call
        it exactly once). RESOURCE_EXHAUSTED when a budget is spent."""
        holders = [f"tenant:{principal.tenant}", f"key:{principal.caller}"]
        for holder in holders:
            kind = holder.split(":", 1)[0]
            limit = self._limits[kind]
            if limit and self._counts[holder] >= limit:
                raise ResourceExhaustedError(
                    f"{self._counts[holder]} workflows of this {kind} are running or queued "
                    "(its budget); retry when one ends",
                    retry_after_seconds=5.0,
                    metadata={"budget": kind},
                )
        for holder in holders:
            self._counts[holder] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            for holder in holders:
                self._counts[holder] -= 1
                if self._counts[holder] <= 0:
                    del self._counts[holder]

        return release
