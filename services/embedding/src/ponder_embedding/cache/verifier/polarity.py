"""Polarity: a negation (not, n't, no, never, without, fail to, lacks ...) in one text only."""

from __future__ import annotations

from ponder_embedding.cache.verifier.normalise import Analysis
from ponder_embedding.cache.verifier.verdict import POLARITY, Verdict, quoted


def check_polarity(a: Analysis, b: Analysis) -> Verdict | None:
    """A rejection when the texts hold different numbers of negations, else None."""
    negations_a = [t for t in a.tokens if t.negation]
    negations_b = [t for t in b.tokens if t.negation]
    if len(negations_a) == len(negations_b):
        return None
    more, fewer = (
        (negations_a, negations_b)
        if len(negations_a) > len(negations_b)
        else (negations_b, negations_a)
    )
    others = {t.lower for t in fewer}
    word = next((t.surface for t in more if t.lower not in others), more[0].surface)
    return Verdict.reject(POLARITY, f"polarity differs {quoted(word)}")
