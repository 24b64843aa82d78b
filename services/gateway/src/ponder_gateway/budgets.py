"""Workflow budgets per tenant and per key.

- In flight: how many workflows one tenant (all its keys), or one key, may have running or
  queued on this gateway at once, so that one caller cannot take the whole capacity
  (PONDER_GATEWAY_MAX_RUNNING_WORKFLOWS + _MAX_QUEUED_WORKFLOWS) from the others. Beyond a
  budget: RESOURCE_EXHAUSTED with RetryInfo, like the global capacity.
- Daily: how many model tokens and/or USD one key may spend per UTC day (`daily_tokens`,
  `daily_cost_usd` in the keys file). Once spent: RESOURCE_EXHAUSTED with a QuotaFailure,
  until midnight UTC; shared by replicas through Redis (spend_ledger.py).
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.metrics import Meter
from redis.exceptions import RedisError

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.metrics import (
    BUDGET_REJECTIONS,
    WORKFLOW_COST,
    WORKFLOW_KIND,
    WORKFLOW_TOKENS,
    no_op_meter,
)
from ponder_gateway.principals import Principal
from ponder_runtime import QuotaExceededError, ResourceExhaustedError
from ponder_runtime.attributes import TOKEN_TYPE


logger = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class Spend:
    """Model usage counted against a daily budget: tokens, and USD in millionths."""

    tokens: int = 0
    micro_usd: int = 0

    @property
    def usd(self) -> float:
        """The cost in US dollars."""
        return self.micro_usd / 1_000_000


class SpendLedger(Protocol):
    """What each API key spent per UTC day: in memory, or shared by replicas through Redis."""

    async def spent(self, holder: str, day: str) -> Spend:
        """What `holder` spent on `day` (YYYY-MM-DD)."""
        ...

    async def add(self, holder: str, day: str, spend: Spend) -> None:
        """Count `spend` for `holder` on `day` (atomically)."""
        ...


class MemoryLedger:
    """This gateway's own ledger (no Redis): today's and yesterday's spend only."""

    def __init__(self) -> None:
        self._days: dict[str, dict[str, Spend]] = {}

    async def spent(self, holder: str, day: str) -> Spend:
        """What `holder` spent on `day`."""
        return self._days.get(day, {}).get(holder, Spend())

    async def add(self, holder: str, day: str, spend: Spend) -> None:
        """Count `spend`; days before yesterday are forgotten."""
        spent = self._days.setdefault(day, {}).get(holder, Spend())
        self._days[day][holder] = Spend(
            spent.tokens + spend.tokens, spent.micro_usd + spend.micro_usd
        )
        for old in sorted(self._days)[:-2]:
            del self._days[old]


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a key may still spend today (None: no limit of that kind)."""

    tokens: int | None = None
    usd: float | None = None


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class DailyBudgets:
    """Per-key daily budgets (tokens and/or USD per UTC day, from the keys file): checked when
    a workflow is admitted (RESOURCE_EXHAUSTED with QuotaFailure once spent), charged with
    the workflow's usage when it ends. A key can go over by what its workflows already in
    flight spend; `max_tokens` / `max_cost_usd` on each workflow make that a hard bound.
    Also counts every workflow's tokens and cost in the `ponder.workflow.tokens` and
    `ponder.workflow.cost` metrics.

    A ledger outage (Redis away) lets workflows through (logged): budgets degrade, the
    gateway does not."""

    def __init__(
        self,
        ledger: SpendLedger,
        *,
        meter: Meter | None = None,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        meter = meter or no_op_meter()
        self._tokens = meter.create_counter(
            WORKFLOW_TOKENS, unit="{token}", description="Language-model tokens of workflows."
        )
        self._cost = meter.create_counter(
            WORKFLOW_COST, unit="USD", description="Language-model cost of workflows."
        )
        self._refused = meter.create_counter(
            BUDGET_REJECTIONS, unit="{request}", description="Workflows refused by a budget."
        )

    def _day(self) -> tuple[str, float]:
        """Today (UTC) as YYYY-MM-DD, and the seconds until tomorrow."""
        now = self._clock()
        tomorrow = (now + datetime.timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        return now.strftime("%Y-%m-%d"), (tomorrow - now).total_seconds()

    async def check(self, principal: Principal) -> Allowance:
        """What the caller's key may still spend today; QuotaExceededError once spent."""
        if not (principal.daily_tokens or principal.daily_cost_usd):
            return Allowance()
        day, until_tomorrow = self._day()
        try:
            spent = await self._ledger.spent(_holder(principal), day)
        except RedisError as exc:
            logger.warning(
                "daily budget not checked: ledger unavailable", extra={"error": str(exc)}
            )
            return Allowance()
        violations = []
        if principal.daily_tokens and spent.tokens >= principal.daily_tokens:
            violations.append(
                (
                    f"key:{principal.key_id}",
                    f"daily token budget spent: {spent.tokens} of {principal.daily_tokens} "
                    f"tokens used on {day} (UTC)",
                )
            )
        if principal.daily_cost_usd and spent.usd >= principal.daily_cost_usd:
            violations.append(
                (
                    f"key:{principal.key_id}",
                    f"daily cost budget spent: ${spent.usd:.6f} of "
                    f"${principal.daily_cost_usd:g} used on {day} (UTC)",
                )
            )
        if violations:
            self._refused.add(1, {"budget": "daily"})
            raise QuotaExceededError(
                "the API key's daily budget is spent; it renews at 00:00 UTC",
                violations,
                retry_after_seconds=until_tomorrow,
                metadata={"budget": "daily", "key": principal.key_id},
            )
        return Allowance(
            tokens=principal.daily_tokens - spent.tokens if principal.daily_tokens else None,
            usd=principal.daily_cost_usd - spent.usd if principal.daily_cost_usd else None,
        )

    async def charge(self, principal: Principal, workflow: workflow_pb2.Workflow) -> None:
        """Count a finished workflow's usage: in the metrics, and against the key's day."""
        usage = workflow.usage
        if not (usage.total_tokens or usage.cost_usd):
            return  # nothing spent (a cache hit): nothing to count
        kind = {WORKFLOW_KIND: workflow_pb2.WorkflowKind.Name(workflow.kind).split("_", 2)[2]}
        if usage.total_tokens:
            self._tokens.add(usage.prompt_tokens, {**kind, TOKEN_TYPE: "input"})
            self._tokens.add(usage.completion_tokens, {**kind, TOKEN_TYPE: "output"})
        if usage.cost_usd:
            self._cost.add(usage.cost_usd, kind)
        if not (principal.daily_tokens or principal.daily_cost_usd) or not usage.total_tokens:
            return
        spend = Spend(usage.total_tokens, round(usage.cost_usd * 1_000_000))
        try:
            await self._ledger.add(_holder(principal), self._day()[0], spend)
        except RedisError as exc:
            logger.warning(
                "daily budget not charged: ledger unavailable", extra={"error": str(exc)}
            )


def _holder(principal: Principal) -> str:
    """Whose budget: the key (its id, within its tenant)."""
    return f"{principal.tenant}/{principal.key_id}"
