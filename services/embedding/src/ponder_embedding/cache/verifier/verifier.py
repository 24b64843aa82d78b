"""The deterministic equivalence verifier: do two questions ask the same thing?"""

from __future__ import annotations

from cachetools import LRUCache

from ponder_embedding.cache.verifier.antonyms import check_antonyms
from ponder_embedding.cache.verifier.content import check_content
from ponder_embedding.cache.verifier.lexicon import Lexicon
from ponder_embedding.cache.verifier.normalise import Analysis, analyse
from ponder_embedding.cache.verifier.numbers import check_numbers
from ponder_embedding.cache.verifier.polarity import check_polarity
from ponder_embedding.cache.verifier.roles import check_roles
from ponder_embedding.cache.verifier.verdict import ACCEPTED, ROLE_ORDER, Verdict, quoted


ANALYSES_KEPT = 4096


class Verifier:
    """Accepts a pair only when nothing distinguishes them: same polarity, same numbers, no
    antonyms, no swapped roles, the same entities and content words (after aliases, stems and
    synonyms). Checks run in that order and the first difference is the reason."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self._lexicon = lexicon or Lexicon.load()
        self._analyses: LRUCache[str, Analysis] = LRUCache(ANALYSES_KEPT)  # recent first

    def analyse(self, text: str) -> Analysis:
        """Tokens of `text` (recent texts are remembered)."""
        found = self._analyses.get(text)
        if found is None:
            found = self._analyses[text] = analyse(self._lexicon, text)
        return found

    def embedding_text(self, text: str) -> str:
        """The normalised form that is embedded, so paraphrases (acronyms, hyphens, question
        forms) land closer together."""
        return self.analyse(text).embedding_text

    def verify(self, query: str, candidate: str) -> Verdict:
        """Whether `candidate`'s answer may serve `query`, and why."""
        a, b = self.analyse(query), self.analyse(candidate)
        return (
            check_polarity(a, b)
            or check_numbers(a, b)
            or check_antonyms(self._lexicon, a, b)
            or self._roles(a, b)
            or check_content(a, b)
            or ACCEPTED
        )

    @staticmethod
    def _roles(a: Analysis, b: Analysis) -> Verdict | None:
        swapped = check_roles(a, b)
        if swapped is None:
            return None
        return Verdict.reject(ROLE_ORDER, f"entity order differs {quoted(*swapped)}")
