"""The reflection loop's token and cost budgets: no call that could go over is started, the
loop stops with the best text so far, and the outcome says why."""

from __future__ import annotations

import dataclasses

import pytest

from ponder_reflection.budget import (
    DEFAULT_PRICES,
    BudgetTooSmallError,
    Price,
    PriceTable,
    estimate_tokens,
)
from ponder_reflection.loop import reflect, validate_spec
from ponder_reflection.offline import OfflineProvider
from ponder_reflection.types import ReflectionSpec, SourceDocument, StepKind, StopReason
from tests.support.reflection import RAG_TOPIC, ScriptedProvider, needs_work


DOCS = (
    SourceDocument("d1", "Retrieval-Augmented Generation", "RAG grounds answers in documents."),
    SourceDocument("d2", "Self-RAG", "Self-RAG retrieves on demand and critiques itself."),
)
# ScriptedProvider: draft 10 in / 5 out, critique 20 / 3, refine 30 / 7 tokens (its estimates
# are exact). A refine is only started with room for the critique after it: 30+20+7 in, 10 out.
DRAFT_AND_CRITIQUE = 15 + 23


def scripted() -> ScriptedProvider:
    """A provider whose critiques always ask for more work (so only budgets stop it early)."""
    return ScriptedProvider(
        texts=["Draft [1].", "Better [1][2].", "Best [1][2]."],
        critiques=[needs_work(5.0), needs_work(6.0), needs_work(7.0)],
    )


def spec(**budget: float) -> ReflectionSpec:
    """Three iterations on two documents, with the given budget."""
    return ReflectionSpec(RAG_TOPIC, DOCS, 3, 9.5, **budget)  # type: ignore[arg-type]


async def test_a_token_budget_stops_before_the_refine_that_would_exceed_it():
    """Room for the draft and its critique only: the refine is never called, the critiqued
    draft is the result, and the outcome says the budget stopped it."""
    provider = scripted()
    outcome = await reflect(provider, spec(max_tokens=DRAFT_AND_CRITIQUE + 10))
    assert [kind for kind, _ in provider.calls] == ["draft", "critique"]
    assert outcome.stop_reason == StopReason.BUDGET_EXHAUSTED
    assert outcome.text == "Draft [1]."
    assert outcome.score == 5.0
    assert outcome.usage.total_tokens == DRAFT_AND_CRITIQUE
    assert any("Budget reached: the refine of iteration 2" in w for w in outcome.warnings)


async def test_without_room_for_a_critique_the_draft_is_the_result():
    """A budget that pays for the draft but not its critique returns the uncritiqued draft."""
    provider = scripted()
    outcome = await reflect(provider, spec(max_tokens=20))
    assert [kind for kind, _ in provider.calls] == ["draft"]
    assert outcome.stop_reason == StopReason.BUDGET_EXHAUSTED
    assert (outcome.text, outcome.iterations, outcome.score) == ("Draft [1].", (), 0.0)
    assert outcome.usage.total_tokens <= 20


async def test_a_budget_below_the_first_draft_is_refused_before_any_call():
    """BudgetTooSmallError, and the provider is never called."""
    provider = scripted()
    with pytest.raises(BudgetTooSmallError, match="first draft"):
        await reflect(provider, spec(max_tokens=14))
    assert provider.calls == []


async def test_a_cost_budget_is_priced_from_the_table():
    """$1000/$2000 per million tokens: draft $0.02 + critique $0.026 fit in $0.05, the refine
    with its critique ($0.077 more) does not; the outcome's cost is what was spent."""
    provider = scripted()
    prices = PriceTable({"script-1": Price(1000.0, 2000.0)})
    outcome = await reflect(provider, spec(max_cost_usd=0.05), prices=prices)
    assert [kind for kind, _ in provider.calls] == ["draft", "critique"]
    assert outcome.stop_reason == StopReason.BUDGET_EXHAUSTED
    assert outcome.usage.cost_usd == pytest.approx(0.046)
    assert [step.usage.cost_usd for step in outcome.steps] == pytest.approx([0.02, 0.026])


async def test_a_cost_budget_on_an_unpriced_model_is_refused():
    """A model the table does not price cannot be held to a cost limit."""
    with pytest.raises(BudgetTooSmallError, match="no price"):
        await reflect(scripted(), spec(max_cost_usd=1.0), prices=PriceTable({}))


async def test_resumed_steps_count_against_the_budget():
    """Steps an interrupted run finished are spent already: with room for one more critique
    but not a refine after them, the loop stops without calling the provider again."""
    first = await reflect(scripted(), spec(max_tokens=DRAFT_AND_CRITIQUE))
    provider = scripted()
    resumed = dataclasses.replace(spec(max_tokens=DRAFT_AND_CRITIQUE + 20), completed=first.steps)
    outcome = await reflect(provider, resumed)
    assert provider.calls == []
    assert outcome.stop_reason == StopReason.BUDGET_EXHAUSTED
    assert outcome.usage.total_tokens == DRAFT_AND_CRITIQUE


async def test_no_budget_runs_every_iteration():
    """Without limits the budget changes nothing."""
    outcome = await reflect(scripted(), spec())
    assert outcome.stop_reason == StopReason.MAX_ITERATIONS_REACHED
    assert len(outcome.iterations) == 3


async def test_the_offline_provider_is_free_but_counts_its_words():
    """Offline: cost 0 under any price table; its word counts stay within the token budget."""
    provider = OfflineProvider()
    estimate = provider.estimate(StepKind.DRAFT, RAG_TOPIC, DOCS)
    budget = estimate.total_tokens + 5
    outcome = await reflect(provider, spec(max_tokens=budget, max_cost_usd=0.000001))
    assert outcome.usage.total_tokens <= budget
    assert outcome.usage.cost_usd == 0.0
    assert outcome.stop_reason == StopReason.BUDGET_EXHAUSTED


def test_out_of_range_budgets_are_violations():
    """Negative or absurd budgets name their field."""
    fields = [f for f, _ in validate_spec(spec(max_tokens=-1, max_cost_usd=float("nan")))]
    assert fields == ["max_tokens", "max_cost_usd"]


def test_prices_of_dated_model_names_and_estimates():
    """A dated model name takes its base's price; the estimate over-counts English text."""
    table = PriceTable(DEFAULT_PRICES)
    assert table.price("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert table.price("gpt-4o-2024-08-06") == Price(2.50, 10.00)
    assert table.price("llama3") is None
    sentence = "Retrieval-augmented generation grounds a model's answers in documents."
    assert estimate_tokens(sentence) >= len(sentence.split())
