"""Per-key daily budgets: checked at admission, charged at the end, renewed at midnight UTC,
refused with a QuotaFailure naming the key."""

from __future__ import annotations

import datetime

import pytest
from google.rpc import error_details_pb2

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.budgets import DailyBudgets, MemoryLedger
from ponder_gateway.principals import DEFAULT_SCOPES, Principal
from ponder_runtime import QuotaExceededError


class Clock:
    """A settable UTC clock."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 12, 4, 23, 0, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


def spent(tokens: int, cost: float = 0.0) -> pb.Workflow:
    """A finished workflow that used `tokens` and `cost`."""
    workflow = pb.Workflow(kind=pb.WORKFLOW_KIND_REFLECTION)
    workflow.usage.prompt_tokens = tokens - tokens // 4
    workflow.usage.completion_tokens = tokens // 4
    workflow.usage.total_tokens = tokens
    workflow.usage.cost_usd = cost
    return workflow


CAPPED = Principal("team", "bot", DEFAULT_SCOPES, "key:abc", daily_tokens=1000, daily_cost_usd=2)
FREE = Principal("team", "free", DEFAULT_SCOPES, "key:def")


async def test_a_spent_key_is_refused_until_midnight_utc() -> None:
    """Under the limit: allowed with what is left; at it: QuotaFailure and RetryInfo until
    midnight; the next UTC day starts afresh; a key without limits is never counted."""
    clock = Clock()
    budgets = DailyBudgets(MemoryLedger(), clock=clock)
    left = await budgets.check(CAPPED)
    assert (left.tokens, left.usd) == (1000, 2.0)
    await budgets.charge(CAPPED, spent(600, 0.5))
    assert (await budgets.check(CAPPED)).tokens == 400
    await budgets.charge(CAPPED, spent(500, 0.5))
    with pytest.raises(QuotaExceededError) as caught:
        await budgets.check(CAPPED)
    assert caught.value.retry_after_seconds == pytest.approx(3600)
    failure = next(
        d for d in caught.value.details() if isinstance(d, error_details_pb2.QuotaFailure)
    )
    assert [v.subject for v in failure.violations] == ["key:bot"]
    assert "1100 of 1000 tokens used on 2026-12-04" in failure.violations[0].description
    await budgets.charge(FREE, spent(10_000))
    assert (await budgets.check(FREE)).tokens is None
    clock.now += datetime.timedelta(hours=1, minutes=1)
    assert (await budgets.check(CAPPED)).tokens == 1000


async def test_a_cost_limit_is_enforced_like_tokens() -> None:
    """$2 a day: refused once the charged costs reach it."""
    budgets = DailyBudgets(MemoryLedger(), clock=Clock())
    await budgets.charge(CAPPED, spent(10, 2.0))
    with pytest.raises(QuotaExceededError, match="daily budget is spent"):
        await budgets.check(CAPPED)
