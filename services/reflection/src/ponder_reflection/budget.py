"""Token and cost budgets of one reflection: a price table per model, the spend so far, and
the check made before each model call (never start a call that could go over)."""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

from .types import TokenUsage


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, usage: TokenUsage) -> float:
        """What `usage` costs, in USD."""
        return (
            usage.prompt_tokens * self.input_per_million
            + usage.completion_tokens * self.output_per_million
        ) / 1_000_000


FREE = Price(0.0, 0.0)

# OpenAI's list prices (USD per 1M tokens, standard tier) of the models most used with Ponder;
# PONDER_REFLECTION_PRICES replaces or extends them, e.g. for a local model.
DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
}


class PriceTable:
    """Prices by model name; a dated name ("gpt-4o-mini-2024-07-18") takes its base's price."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)

    def price(self, model: str) -> Price | None:
        """The price of `model`, or of the longest listed name it starts with; None if none."""
        if model in self._prices:
            return self._prices[model]
        bases = [name for name in self._prices if model.startswith(f"{name}-")]
        return self._prices[max(bases, key=len)] if bases else None


class BudgetExhaustedError(Exception):
    """The next model call could go over the budget, so it was not made."""


class BudgetTooSmallError(ValueError):
    """The budget cannot pay for the first draft, or the model has no price for a cost limit."""


@dataclass(frozen=True, slots=True)
class Limits:
    """A reflection's limits: most tokens and most USD (0: no limit)."""

    max_tokens: int = 0
    max_cost_usd: float = 0.0

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return self.max_tokens > 0 or self.max_cost_usd > 0


class Budget:
    """What one reflection has spent against its limits, with the model's price."""

    def __init__(self, limits: Limits, price: Price | None) -> None:
        if limits.max_cost_usd > 0 and price is None:
            raise BudgetTooSmallError(
                "max_cost_usd is set but the model has no price: add it to PONDER_REFLECTION_PRICES"
            )
        self.limits = limits
        self._price = price or FREE
        self.spent = TokenUsage()

    def priced(self, usage: TokenUsage) -> TokenUsage:
        """`usage` with its cost filled in from the model's price."""
        return replace(usage, cost_usd=self._price.cost(usage))

    def spend(self, usage: TokenUsage) -> None:
        """Count a finished call (its usage priced already, or priced here when it is not)."""
        self.spent = self.spent + (usage if usage.cost_usd else self.priced(usage))

    def shortfall(self, estimate: TokenUsage, pending: TokenUsage | None = None) -> str:
        """Why a call estimated at `estimate` (prompt counted, completion at its maximum)
        cannot be made after `pending` (calls of the current step, not counted yet); "" when
        it fits."""
        limits = self.limits
        spent = self.spent + self.priced(pending) if pending is not None else self.spent
        tokens = spent.total_tokens + estimate.total_tokens
        if limits.max_tokens and tokens > limits.max_tokens:
            return (
                f"it could use {estimate.total_tokens} tokens, "
                f"{max(0, limits.max_tokens - spent.total_tokens)} of max_tokens "
                f"{limits.max_tokens} are left"
            )
        cost = spent.cost_usd + self._price.cost(estimate)
        if limits.max_cost_usd and cost > limits.max_cost_usd + 1e-12:
            left = max(0.0, limits.max_cost_usd - spent.cost_usd)
            return (
                f"it could cost ${self._price.cost(estimate):.6f}, "
                f"${left:.6f} of max_cost_usd ${limits.max_cost_usd:g} are left"
            )
        return ""

    def check(self, estimate: TokenUsage, what: str, pending: TokenUsage | None = None) -> None:
        """Raise BudgetExhaustedError when a call estimated at `estimate` does not fit (after
        `pending`, as for `shortfall`)."""
        why = self.shortfall(estimate, pending)
        if why:
            raise BudgetExhaustedError(f"Budget reached: the {what} was not made ({why})")


# The budget of the reflection being run, for providers that make extra calls within one
# step (the OpenAI provider's critique repair).
_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "ponder_reflection_budget", default=None
)


@contextmanager
def budget_in_force(budget: Budget) -> Iterator[None]:
    """Make `budget` the current one for the body."""
    token = _CURRENT.set(budget)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def check_extra_call(estimate: TokenUsage, what: str, pending: TokenUsage) -> None:
    """Before an extra model call inside a step that already used `pending`:
    BudgetExhaustedError when it does not fit the current budget (nothing without one)."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.check(estimate, what, pending)


def estimate_tokens(text: str) -> int:
    """An over-estimate of the tokens of `text` for BPE tokenizers: one per 3 bytes of UTF-8
    (English prose averages about 4 bytes per token), at least one per whitespace word."""
    return max(math.ceil(len(text.encode()) / 3), len(text.split()))
