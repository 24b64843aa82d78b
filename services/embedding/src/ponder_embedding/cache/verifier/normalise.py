"""Text to tokens: contractions, hyphens, aliases and multi-word synonyms, numbers, stems."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ponder_embedding.cache.verifier.lexicon import (
    MAX_PHRASE_WORDS,
    NEGATIONS,
    NUMBER_WORDS,
    Lexicon,
    Phrase,
)


_CONTRACTIONS = (
    (re.compile(r"\bcan['\u2019]t\b", re.IGNORECASE), "can not"),
    (re.compile(r"\bwon['\u2019]t\b", re.IGNORECASE), "will not"),
    (re.compile(r"\bcannot\b", re.IGNORECASE), "can not"),
    (re.compile(r"n['\u2019]t\b", re.IGNORECASE), " not"),
    (re.compile(r"['\u2019](s|re|ve|ll|d|m)\b", re.IGNORECASE), ""),
)
_SEPARATORS = re.compile(r"[-\u2010\u2013\u2014/_]")
_WORD = re.compile(r"[A-Za-z0-9]+(?:\.[0-9]+)*")
_PARTS = re.compile(r"[0-9]+(?:\.[0-9]+)*|[A-Za-z]+")  # letters apart from digits
# Prefixes written joined, hyphenated or apart ("re-ranker", "reranker", "re ranker").
JOINING_PREFIXES = frozenset(["re", "pre", "co", "non", "multi", "sub", "semi", "self", "cross"])


@dataclass(frozen=True, slots=True)
class Token:
    """One word (or alias phrase) of a text: `surface` as written, `stem` its Snowball stem,
    `canon` after synonyms, and what kind of word it is."""

    surface: str
    stem: str
    canon: str
    lower: str
    entity: bool = False
    number: bool = False
    negation: bool = False
    stop: bool = False


@dataclass(frozen=True, slots=True)
class Analysis:
    """A text's tokens in order and the normalised text that is embedded for the cache."""

    tokens: tuple[Token, ...]
    embedding_text: str

    @property
    def content(self) -> tuple[Token, ...]:
        """Tokens that carry meaning (no stop words, no negations)."""
        return tuple(t for t in self.tokens if not t.stop and not t.negation)


def words(text: str) -> list[tuple[str, str]]:
    """The words of a text with what each was written as, after contractions and hyphens are
    resolved and letters are split from digits, so "GPT-4", "GPT 4" and "GPT4" are all
    ("GPT", "4"): (word, as written) pairs."""
    text = unicodedata.normalize("NFKC", text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = _SEPARATORS.sub(" ", text)  # chain-of-thought -> chain of thought
    found: list[tuple[str, str]] = []
    for word in _WORD.findall(text):
        parts = _PARTS.findall(word)
        found.extend((part, word) for part in parts)
    return found


def _entity_like(surface: str, first: bool) -> bool:
    """BERT, LLaMA, GPT4, ColBERT; a capitalised word that does not start the text."""
    upper = sum(c.isupper() for c in surface)
    has_digit = any(c.isdigit() for c in surface)
    has_alpha = any(c.isalpha() for c in surface)
    capitalised = upper == 1 and surface[0].isupper() and not first
    return upper >= 2 or (has_digit and has_alpha) or capitalised


def _match(lexicon: Lexicon, lowered: list[str], start: int) -> tuple[int, Phrase] | None:
    """The longest alias or synonym phrase at `start` (a final plural "s" is allowed)."""
    first = lowered[start]
    starts = lexicon.phrase_starts
    if first not in starts and not (first.endswith("s") and first[:-1] in starts):
        return None  # no phrase starts with this word (most words): skip the lookups
    for length in range(min(MAX_PHRASE_WORDS, len(lowered) - start), 0, -1):
        key = tuple(lowered[start : start + length])
        phrase = lexicon.phrases.get(key)
        if phrase is None and key[-1].endswith("s") and len(key[-1]) > 2:
            phrase = lexicon.phrases.get((*key[:-1], key[-1][:-1]))
        if phrase is not None:
            return length, phrase
    return None


def analyse(lexicon: Lexicon, text: str) -> Analysis:
    """Tokens of `text` and the text to embed (aliases expanded, synonyms unified)."""
    pairs = words(text)
    written = [word for word, _ in pairs]
    as_written = [original for _, original in pairs]
    lowered = [w.lower() for w in written]
    tokens: list[Token] = []
    embedded: list[str] = []
    index = 0
    while index < len(written):
        found = _match(lexicon, lowered, index)
        if found is not None:
            length, phrase = found
            surface = " ".join(written[index : index + length])
            stop = phrase.words in lexicon.stopwords
            tokens.append(
                Token(
                    surface,
                    phrase.token,
                    phrase.token,
                    phrase.words,
                    entity=phrase.entity,
                    stop=stop,
                )
            )
            embedded.append(phrase.words)
            index += length
            continue
        surface, lower = as_written[index], lowered[index]
        spoken = lower
        if lower in JOINING_PREFIXES and index + 1 < len(written):
            index += 1
            surface, lower = f"{surface}-{written[index]}", lower + lowered[index]
            spoken = f"{spoken} {lowered[index]}"
        lower = NUMBER_WORDS.get(lower, lower)
        number = any(c.isdigit() for c in lower)
        canon = lexicon.canon(lower)
        tokens.append(
            Token(
                surface,
                lexicon.stem(lower),
                canon,
                lower,
                entity=_entity_like(surface.replace("-", ""), first=index == 0) and not number,
                number=number,
                negation=lower in NEGATIONS,
                stop=lower in lexicon.stopwords or canon in lexicon.stop_stems,
            )
        )
        embedded.append(spoken)
        index += 1
    return Analysis(tuple(tokens), " ".join(embedded))
