"""Workflow budgets per tenant and per key."""

from __future__ import annotations

import pytest

from ponder_gateway.budgets import WorkflowBudgets
from ponder_gateway.principals import DEFAULT_SCOPES, Principal
from ponder_runtime import ResourceExhaustedError


A1 = Principal("a", "a1", DEFAULT_SCOPES, "key:a1")
A2 = Principal("a", "a2", DEFAULT_SCOPES, "key:a2")
B1 = Principal("b", "b1", DEFAULT_SCOPES, "key:b1")


def test_a_tenant_budget_spans_its_keys_and_frees_on_release() -> None:
    """Two per tenant: a1 and a2 together use it up, b is not affected; a release (even
    called twice) frees exactly one place."""
    budgets = WorkflowBudgets(per_tenant=2, per_key=0)
    first = budgets.acquire(A1)
    budgets.acquire(A2)
    with pytest.raises(ResourceExhaustedError, match="tenant"):
        budgets.acquire(A1)
    budgets.acquire(B1)
    first()
    first()
    budgets.acquire(A2)
    with pytest.raises(ResourceExhaustedError):
        budgets.acquire(A2)


def test_a_key_budget_leaves_the_tenants_other_keys_alone() -> None:
    """One per key: a1's second is refused naming the key budget, a2 still starts; zero
    limits refuse nothing."""
    budgets = WorkflowBudgets(per_tenant=0, per_key=1)
    budgets.acquire(A1)
    with pytest.raises(ResourceExhaustedError, match="key"):
        budgets.acquire(A1)
    budgets.acquire(A2)
    unlimited = WorkflowBudgets(per_tenant=0, per_key=0)
    for _ in range(100):
        unlimited.acquire(A1)
