"""Okapi BM25 keyword ranking over texts kept by key."""

from __future__ import annotations

import math
import re
from collections import Counter


# Hyphenated compounds index as their parts: "Retrieval-Augmented" matches "retrieval augmented".
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset(
    """
    a an and are as at be by can do does for from how in into is it its of on or that the their
    them these this to use used uses using was what when which while who why with we our you
    your
    """.split()  # noqa: SIM905 - a wrapped block reads better than a long list
)


def tokenize(text: str) -> list[str]:
    """Lowercase content words, with a crude plural stem ("models" -> "model")."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP_WORDS:
            continue
        plural = len(word) > 3 and word.endswith("s") and not word.endswith("ss")
        words.append(word[:-1] if plural else word)
    return words


class BM25:
    """Okapi BM25 (k1=1.5, b=0.75) over texts added and removed by key, with an inverted
    index, so a search reads only the postings of the query's terms."""

    def __init__(self, *, k1: float = 1.5, b: float = 0.75) -> None:
        self._k1 = k1
        self._b = b
        self._postings: dict[str, dict[str, int]] = {}  # term -> {key: term frequency}
        self._lengths: dict[str, int] = {}
        self._terms: dict[str, tuple[str, ...]] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, key: str, text: str) -> None:
        """Index `text` under `key` (replacing what `key` held)."""
        self.remove(key)
        counts = Counter(tokenize(text))
        for term, frequency in counts.items():
            self._postings.setdefault(term, {})[key] = frequency
        length = sum(counts.values())
        self._terms[key] = tuple(counts)
        self._lengths[key] = length
        self._total_length += length

    def remove(self, key: str) -> None:
        """Forget `key` (nothing happens when it is unknown)."""
        length = self._lengths.pop(key, None)
        if length is None:
            return
        self._total_length -= length
        for term in self._terms.pop(key):
            del self._postings[term][key]
            if not self._postings[term]:
                del self._postings[term]

    def search(self, query: str, limit: int | None = None) -> list[tuple[str, float]]:
        """(key, score) pairs with a positive score, best first, at most `limit`."""
        count = len(self._lengths)
        if not count or not self._total_length:
            return []
        average = self._total_length / count
        scores: dict[str, float] = {}
        for term in set(tokenize(query)):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (count - len(postings) + 0.5) / (len(postings) + 0.5))
            for key, tf in postings.items():
                norm = self._k1 * (1 - self._b + self._b * self._lengths[key] / average)
                scores[key] = scores.get(key, 0.0) + idf * tf * (self._k1 + 1) / (tf + norm)
        ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
        return ranked if limit is None else ranked[:limit]
