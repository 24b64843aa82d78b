"""Request validation that collects every field violation before failing."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass, field

from ponder_runtime.errors import FieldViolation, InvalidArgumentError


@dataclass(slots=True)
class RequestValidator:
    """Collects field violations; `check()` raises one InvalidArgumentError listing them all."""

    violations: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        """Record a violation of `field_path`."""
        self.violations.append(FieldViolation(field_path, description))

    def text(self, field_path: str, value: str, *, max_length: int, required: bool = True) -> None:
        """A string that must be non-blank (when required) and at most max_length characters."""
        if required and not value.strip():
            self.add(field_path, "must not be empty")
        elif len(value) > max_length:
            self.add(field_path, f"must be at most {max_length} characters, got {len(value)}")

    def number(
        self, field_path: str, value: float, *, low: float, high: float, zero_means_default: bool
    ) -> None:
        """A number within [low, high]; 0 passes when it means "server default"."""
        if zero_means_default and value == 0:
            return
        if not low <= value <= high:
            suffix = " (0 means the default)" if zero_means_default else ""
            self.add(field_path, f"must be between {low:g} and {high:g}{suffix}, got {value:g}")

    def count(self, field_path: str, values: Sized, *, low: int, high: int) -> None:
        """A repeated field with between low and high elements."""
        if not low <= len(values) <= high:
            self.add(field_path, f"must have between {low} and {high} items, got {len(values)}")

    def check(self) -> None:
        """Raise InvalidArgumentError when any violation was recorded."""
        if self.violations:
            raise InvalidArgumentError(self.violations)
