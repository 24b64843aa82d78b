"""RequestValidator: each check's pass/fail rules, and one error listing every violation."""

from collections.abc import Callable

import pytest

from ponder_runtime import FieldViolation, InvalidArgumentError, RequestValidator


def _violations(run: Callable[[RequestValidator], None]) -> list[FieldViolation]:
    """The violations a validator records when `run(validator)` is applied to it."""
    validator = RequestValidator()
    run(validator)
    return validator.violations


class TestRequestValidator:
    @pytest.mark.parametrize(
        ("value", "max_length", "required", "expected"),
        [
            ("retrieval", 20, True, None),
            ("", 20, True, "must not be empty"),
            ("   \t\n", 20, True, "must not be empty"),
            ("", 20, False, None),
            ("x" * 20, 20, True, None),
            ("x" * 21, 20, True, "must be at most 20 characters, got 21"),
            ("x" * 21, 20, False, "must be at most 20 characters, got 21"),
        ],
        ids=[
            "ok",
            "empty",
            "blank",
            "optional-empty",
            "at-limit",
            "too-long",
            "optional-too-long",
        ],
    )
    def test_text(self, value: str, max_length: int, required: bool, expected: str | None) -> None:
        """Required text must be non-blank; any text at most max_length characters."""
        found = _violations(
            lambda v: v.text("query", value, max_length=max_length, required=required)
        )
        assert found == ([] if expected is None else [FieldViolation("query", expected)])

    @pytest.mark.parametrize(
        ("value", "zero_means_default", "expected"),
        [
            (5, False, None),
            (1, False, None),
            (50, False, None),
            (0, True, None),
            (0, False, "must be between 1 and 50, got 0"),
            (51, False, "must be between 1 and 50, got 51"),
            (51, True, "must be between 1 and 50 (0 means the default), got 51"),
            (-3, True, "must be between 1 and 50 (0 means the default), got -3"),
            (0.5, False, "must be between 1 and 50, got 0.5"),
        ],
        ids=[
            "inside",
            "low-bound",
            "high-bound",
            "zero-default",
            "zero-not-default",
            "above",
            "above-default-hint",
            "negative",
            "fraction-below",
        ],
    )
    def test_number(self, value: float, zero_means_default: bool, expected: str | None) -> None:
        """Numbers must lie in [low, high]; 0 passes only when it means the server default."""
        found = _violations(
            lambda v: v.number(
                "max_results", value, low=1, high=50, zero_means_default=zero_means_default
            )
        )
        assert found == ([] if expected is None else [FieldViolation("max_results", expected)])

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            (["a"], None),
            (["a", "b", "c"], None),
            ([], "must have between 1 and 3 items, got 0"),
            (["a", "b", "c", "d"], "must have between 1 and 3 items, got 4"),
            ("abcd", "must have between 1 and 3 items, got 4"),
        ],
        ids=["one", "at-limit", "empty", "too-many", "any-sized"],
    )
    def test_count(self, values: list[str] | str, expected: str | None) -> None:
        """A repeated field must have between low and high elements."""
        found = _violations(lambda v: v.count("documents", values, low=1, high=3))
        assert found == ([] if expected is None else [FieldViolation("documents", expected)])

    def test_check_passes_without_violations(self) -> None:
        """check() returns quietly when every field was fine."""
        validator = RequestValidator()
        validator.text("query", "ok", max_length=10)
        validator.number("max_results", 3, low=1, high=5, zero_means_default=False)
        validator.count("sources", [1], low=0, high=3)
        validator.check()
        assert validator.violations == []

    def test_check_raises_with_every_violation(self) -> None:
        """check() raises one InvalidArgumentError listing every violation, in order."""
        validator = RequestValidator()
        validator.text("query", "", max_length=10)
        validator.number("max_results", 500, low=1, high=50, zero_means_default=True)
        validator.count("sources", [], low=1, high=3)
        validator.add("sources[0]", "unknown source 7")
        with pytest.raises(InvalidArgumentError) as caught:
            validator.check()
        assert [v.field for v in caught.value.violations] == [
            "query",
            "max_results",
            "sources",
            "sources[0]",
        ]
        assert caught.value.message == (
            "invalid request: query: must not be empty; "
            "max_results: must be between 1 and 50 (0 means the default), got 500; "
            "sources: must have between 1 and 3 items, got 0; "
            "sources[0]: unknown source 7"
        )

    def test_validators_do_not_share_violations(self) -> None:
        """Each validator starts with its own empty list."""
        first, second = RequestValidator(), RequestValidator()
        first.add("query", "bad")
        assert second.violations == []
