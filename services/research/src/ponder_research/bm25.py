"""Okapi BM25 keyword ranking over a fixed set of texts."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence


# Hyphenated compounds index as their parts: "Retrieval-Augmented" matches "retrieval augmented".
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "them",
        "these",
        "this",
        "to",
        "use",
        "used",
        "uses",
        "using",
        "was",
        "what",
        "when",
        "which",
        "while",
        "who",
        "why",
        "with",
        "we",
        "our",
        "you",
        "your",
    ]
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


class BM25Index:
    """BM25 (k1=1.5, b=0.75) over documents given as texts, searched by query."""

    def __init__(self, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self._k1 = k1
        self._b = b
        self._docs = [Counter(tokenize(text)) for text in texts]
        self._lengths = [sum(doc.values()) for doc in self._docs]
        self._avg_length = (sum(self._lengths) / len(self._docs)) if self._docs else 0.0
        frequency: Counter[str] = Counter()
        for doc in self._docs:
            frequency.update(doc.keys())
        count = len(self._docs)
        self._idf = {
            term: math.log(1 + (count - df + 0.5) / (df + 0.5)) for term, df in frequency.items()
        }

    def __len__(self) -> int:
        return len(self._docs)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """(document index, score) pairs with a positive score, best first, at most `limit`."""
        terms = set(tokenize(query))
        if not self._avg_length:  # no document has a content word
            return []
        scores = []
        for index, doc in enumerate(self._docs):
            score = 0.0
            norm = self._k1 * (1 - self._b + self._b * self._lengths[index] / self._avg_length)
            for term in terms & doc.keys():
                tf = doc[term]
                score += self._idf[term] * tf * (self._k1 + 1) / (tf + norm)
            if score > 0:
                scores.append((index, score))
        scores.sort(key=lambda pair: (-pair[1], pair[0]))
        return scores[:limit]
