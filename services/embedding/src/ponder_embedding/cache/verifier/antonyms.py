"""Antonyms: a word in one text whose opposite is in the other, from the curated lexicon or by
a negating prefix (un-, in-, im-, ir-, il-, dis-, non-, mis-, a-) or opposite prefixes
(over-/under-, pre-/post-, max-/min-, in-/out-, up-/down-, intra-/inter-)."""

from __future__ import annotations

from ponder_embedding.cache.verifier.lexicon import Lexicon
from ponder_embedding.cache.verifier.normalise import Analysis, Token
from ponder_embedding.cache.verifier.verdict import ANTONYM, Verdict, quoted


NEGATING_PREFIXES = ("un", "in", "im", "ir", "il", "dis", "non", "mis", "anti", "de", "a")
OPPOSITE_PREFIXES = (
    ("over", "under"),
    ("pre", "post"),
    ("max", "min"),
    ("in", "out"),
    ("up", "down"),
    ("intra", "inter"),
    ("mono", "multi"),
)
MIN_ROOT = 4  # "a" + "sync" would be too eager below this


def _prefixed(left: str, right: str) -> bool:
    """Whether one word is the other with a negating prefix, or both differ only by opposite
    prefixes."""
    for shorter, longer in ((left, right), (right, left)):
        for prefix in NEGATING_PREFIXES:
            if longer == prefix + shorter and len(shorter) >= MIN_ROOT:
                return True
    for first, second in OPPOSITE_PREFIXES:
        for x, y in ((left, right), (right, left)):
            if x.startswith(first) and y.startswith(second):
                root = x[len(first) :]
                if len(root) >= 3 and root == y[len(second) :]:
                    return True
    return False


def opposite(lexicon: Lexicon, x: Token, y: Token) -> bool:
    """Whether two tokens are antonyms."""
    if x.number or y.number:
        return False
    return (
        lexicon.opposite(x.stem, y.stem)
        or lexicon.opposite(x.canon, y.canon)
        or _prefixed(x.lower, y.lower)
        or _prefixed(x.stem, y.stem)
    )


def check_antonyms(lexicon: Lexicon, a: Analysis, b: Analysis) -> Verdict | None:
    """A rejection when a word only in `a` is the opposite of a word only in `b`, else None."""
    words_a = [t for t in a.tokens if not t.negation and t.lower not in lexicon.stopwords]
    words_b = [t for t in b.tokens if not t.negation and t.lower not in lexicon.stopwords]
    canon_a = {t.canon for t in words_a}
    canon_b = {t.canon for t in words_b}
    only_a = [t for t in words_a if t.canon not in canon_b]
    only_b = [t for t in words_b if t.canon not in canon_a]
    for x in only_a:
        for y in only_b:
            if opposite(lexicon, x, y):
                return Verdict.reject(ANTONYM, f"antonym {quoted(x.surface, y.surface)}")
    return None
