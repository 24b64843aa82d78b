"""The second stage of a cache lookup: a deterministic, explainable equivalence verifier."""

from ponder_embedding.cache.verifier.verdict import CATEGORIES, Verdict
from ponder_embedding.cache.verifier.verifier import Verifier


__all__ = ["CATEGORIES", "Verdict", "Verifier"]
