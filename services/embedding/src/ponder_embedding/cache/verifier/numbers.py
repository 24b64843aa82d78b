"""Numbers, years, versions and quantities (2020, 7B, GPT-4, three) must be the same."""

from __future__ import annotations

from collections import Counter

from ponder_embedding.cache.verifier.normalise import Analysis
from ponder_embedding.cache.verifier.verdict import NUMBER, Verdict, quoted


def check_numbers(a: Analysis, b: Analysis) -> Verdict | None:
    """A rejection when the texts' numbers differ (as a multiset), else None."""
    numbers_a = Counter(t.canon for t in a.tokens if t.number)
    numbers_b = Counter(t.canon for t in b.tokens if t.number)
    if numbers_a == numbers_b:
        return None
    only_a = [t.surface for t in a.tokens if t.number and numbers_a[t.canon] > numbers_b[t.canon]]
    only_b = [t.surface for t in b.tokens if t.number and numbers_b[t.canon] > numbers_a[t.canon]]
    if only_a and only_b:
        return Verdict.reject(NUMBER, f"number differs {quoted(only_a[0], only_b[0])}")
    return Verdict.reject(NUMBER, f"number only in one {quoted((only_a or only_b)[0])}")
