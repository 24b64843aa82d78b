"""Spec validation bounds and the small value types."""

import math

import pytest

from ponder_reflection.loop import validate_spec
from ponder_reflection.types import ReflectionSpec, SourceDocument, TokenUsage


def document(doc_id: str = "doc") -> SourceDocument:
    """A minimal document."""
    return SourceDocument(id=doc_id, title="T", text="Some text.")


def valid_spec(**changes: object) -> ReflectionSpec:
    """A valid spec with some fields replaced."""
    fields: dict[str, object] = {
        "topic": "retrieval-augmented generation",
        "documents": (document(),),
        "max_iterations": 2,
        "score_threshold": 8.0,
    }
    fields.update(changes)
    return ReflectionSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"max_iterations": 1},
        {"max_iterations": 5},
        {"score_threshold": 0.0},
        {"score_threshold": 10.0},
        {"topic": "x" * 2000},
        {"documents": ()},
        {"documents": tuple(document(f"d{i}") for i in range(50))},
    ],
)
def test_specs_within_bounds_are_valid(changes: dict[str, object]) -> None:
    """Values at the edges of every bound pass."""
    assert validate_spec(valid_spec(**changes)) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"topic": ""}, "topic"),
        ({"topic": " \n\t "}, "topic"),
        ({"topic": "x" * 2001}, "topic"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"max_iterations": 6}, "max_iterations"),
        ({"score_threshold": -0.1}, "score_threshold"),
        ({"score_threshold": 10.5}, "score_threshold"),
        ({"score_threshold": math.nan}, "score_threshold"),
        ({"documents": tuple(document(f"d{i}") for i in range(51))}, "documents"),
        ({"documents": (document("a"), document("b"), document(" "))}, "documents[2].id"),
    ],
)
def test_each_bound_violation_is_reported(changes: dict[str, object], field: str) -> None:
    """A broken bound yields exactly one violation naming its field and the rule."""
    violations = validate_spec(valid_spec(**changes))
    assert [name for name, _ in violations] == [field]
    assert violations[0][1]


def test_all_violations_are_reported_together() -> None:
    """Several broken bounds are all listed, in field order."""
    spec = ReflectionSpec("", (document(""), document("ok")), 0, 11.0)
    assert validate_spec(spec) == [
        ("topic", "must not be empty"),
        ("max_iterations", "must be between 1 and 5, got 0"),
        ("score_threshold", "must be between 0 and 10, got 11.0"),
        ("documents[0].id", "must not be empty"),
    ]


def test_token_usage_adds_up() -> None:
    """Usages add field by field, total is their sum, and sum() works from an empty usage."""
    usage = TokenUsage(3, 4) + TokenUsage(10, 1)
    assert usage == TokenUsage(13, 5)
    assert usage.total_tokens == 18
    assert sum([TokenUsage(1, 2), TokenUsage(3, 4)], TokenUsage()) == TokenUsage(4, 6)
