"""A verifier's decision on one pair of texts, with its reason."""

from __future__ import annotations

from dataclasses import dataclass


# Reason categories (GetCacheStats and metrics count rejections by them).
POLARITY = "polarity"
ANTONYM = "antonym"
ROLE_ORDER = "role_order"
NUMBER = "number"
ENTITY = "entity"
CONTENT = "content"
EQUIVALENT = "equivalent"
LLM = "llm"  # accepted by the LLM verifier
CATEGORIES = (POLARITY, ANTONYM, ROLE_ORDER, NUMBER, ENTITY, CONTENT)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether two texts ask the same thing; `reason` says why (or why not) in words, e.g.
    'polarity differs ("fail")', and `category` is one of CATEGORIES or EQUIVALENT."""

    accepted: bool
    category: str
    reason: str
    undecided: bool = False  # a rejection an LLM verifier may overturn (one word each side)

    @classmethod
    def reject(cls, category: str, reason: str, *, undecided: bool = False) -> Verdict:
        """A rejection."""
        return cls(False, category, reason, undecided)

    def __str__(self) -> str:
        return f"{'accepted' if self.accepted else 'rejected'}: {self.reason}"


ACCEPTED = Verdict(True, EQUIVALENT, "same content words after normalisation")


def quoted(*surfaces: str) -> str:
    """'("a" vs "b")' or '("a")'."""
    return "(" + " vs ".join(f'"{s}"' for s in surfaces) + ")"
