"""Deterministic text helpers: sentence splitting, content-word tokens, similarity, topic terms."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .citations import MARKER_RE, strip_markers


# Word lists are kept as wrapped text blocks: easier to read and edit than long list literals.
_STOP_WORDS = frozenset(
    """
    a about above across after again against all almost along also although always am among
    an and another any are around as at be because been before being below between both but
    by can cannot could did do does doing done down during each either else enough etc even
    ever every few for from further had has have having he her here hers herself him himself
    his how however i if in into is it its itself just least less like many may me might more
    most much must my myself neither no nor not now of off often on once one only onto or
    other others otherwise our ours ourselves out over own per perhaps quite rather same
    several shall she should since so some such than that the their theirs them themselves
    then there therefore these they this those though through thus to too toward towards
    under until up upon us use used uses using very via was we well were what whatever when
    where whereas whether which while who whom whose why will with within without would yet
    you your yours yourself yourselves
    aren couldn didn doesn don hadn hasn haven isn shouldn wasn weren won wouldn
    """.split()  # noqa: SIM905
)
# Words that ask for a kind of text rather than name its subject; ignored in topics.
_TOPIC_FILLER = frozenset(
    """
    brief compare comparison describe detail detailed discuss explain explanation give
    introduction overview review short summarise summarize summary tell write
    """.split()  # noqa: SIM905
)
# Words followed by "." that do not end a sentence ("e.g.", "et al.", "Fig.", "approx.").
_ABBREVIATIONS = frozenset(
    """
    al approx ca cf ch dept dr e.g eq eqs est fig figs i.e incl mr mrs ms prof pp ref refs
    resp sec univ viz vol vs
    """.split()  # noqa: SIM905
)
_WORD_RE = re.compile(r"[^\W_]+")  # runs of letters and digits, any script
_TERMINATOR_RE = re.compile(r"[.!?]+[\"')\u2019\u201d]*")
_TRAILING_MARKERS_RE = re.compile(rf"(?:[ \t]*{MARKER_RE.pattern})+")
_DOTTED_ABBREVIATION_RE = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")
_BULLET_RE = re.compile(r"(?:[-*\u2022]|\d{1,2}[.)])\s+")
_OPENING_PUNCTUATION = "([{\"'\u2018\u201c"


@dataclass(frozen=True, slots=True)
class Term:
    """A topic term: its stem, used for matching, and the word as the topic spells it."""

    stem: str
    surface: str


def split_blocks(text: str) -> list[str]:
    """Split `text` into blocks: paragraphs, list items, headings and lines ending in ":".

    Lines inside a block are joined with single spaces; list bullets are dropped.
    """
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append(" ".join(current))
            current.clear()

    for raw_line in text.splitlines():
        line = " ".join(raw_line.split())
        if not line:
            flush()
            continue
        bullet = _BULLET_RE.match(line)
        if bullet or line.startswith("#"):
            flush()
        current.append(line[bullet.end() :] if bullet else line)
        if line.startswith("#") or line.endswith(":"):
            flush()
    flush()
    return blocks


def is_heading(block: str) -> bool:
    """Whether a block introduces content rather than states it (ends in ":" or is "# ...")."""
    return block.startswith("#") or block.endswith(":")


def split_sentences(text: str) -> list[str]:
    """Split `text` into sentences.

    A sentence ends at ".", "!" or "?" (with any closing quotes and trailing `[n]` markers)
    followed by whitespace and a word that does not start in lower case. Abbreviations such
    as "e.g.", "i.e.", "et al." and "Fig.", initials ("J. Smith") and decimals ("3.5") do
    not end a sentence. Blocks (see `split_blocks`) always end one.
    """
    sentences: list[str] = []
    for block in split_blocks(text):
        sentences.extend(_split_block(block))
    return sentences


def _split_block(block: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _TERMINATOR_RE.finditer(block):
        end = match.end()
        markers = _TRAILING_MARKERS_RE.match(block, end)
        if markers:
            end = markers.end()
        if end < len(block) and not block[end].isspace():
            continue
        if not _ends_sentence(block, start, match.start(), end):
            continue
        sentence = block[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = end
    tail = block[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _ends_sentence(block: str, start: int, terminator: int, end: int) -> bool:
    following = block[end:].lstrip()
    if not following or (following[0].islower()):
        return not following
    if block[terminator] != "." or block.startswith("..", terminator):
        return True
    words = block[start:terminator].split()
    token = words[-1].lstrip(_OPENING_PUNCTUATION) if words else ""
    return not _is_abbreviation(token)


def _is_abbreviation(token: str) -> bool:
    """Whether `token`, followed by ".", is an abbreviation or an initial, not a word."""
    if token.lower() in _ABBREVIATIONS:
        return True
    if len(token) == 1 and token.isupper():
        return True
    return _DOTTED_ABBREVIATION_RE.fullmatch(token) is not None


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Lightly stem a lower-case word: plurals, "-ing", "-ed", "-val" nouns and a final "e".

    "models" -> "model", "studies" -> "study", "reasoning" -> "reason",
    "retrieval"/"retrieved"/"retrieve"/"retrieving" -> "retriev", "stopped" -> "stop".
    """
    w = word
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        root = w[: -len(suffix)]
        if w.endswith(suffix) and len(root) >= 3 and _has_vowel(root) and not w.endswith("eed"):
            w = root
            if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeiouylsz":
                w = w[:-1]
            break
    if len(w) > 6 and w.endswith("val"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("e") and not w.endswith("ee"):
        w = w[:-1]
    return w


def _has_vowel(text: str) -> bool:
    return any(char in "aeiouy" for char in text)


def tokenize(text: str) -> list[str]:
    """Stemmed lower-case content words of `text`, in order, without stop words, numbers,
    single letters or citation markers."""
    tokens: list[str] = []
    for word in _WORD_RE.findall(strip_markers(text).lower()):
        if len(word) < 2 or word.isdigit() or word in _STOP_WORDS:
            continue
        tokens.append(stem(word))
    return tokens


def content_terms(text: str) -> frozenset[str]:
    """The set of `tokenize(text)`."""
    return frozenset(tokenize(text))


def jaccard(first: Collection[str], second: Collection[str]) -> float:
    """Size of the intersection over size of the union; 0.0 when both are empty."""
    a, b = set(first), set(second)
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def similarity(first: str, second: str) -> float:
    """Jaccard similarity of the content terms of two texts."""
    return jaccard(content_terms(first), content_terms(second))


def extract_topic_terms(topic: str) -> tuple[Term, ...]:
    """The distinct content terms of a topic, in order, without words like "explain"."""
    terms: dict[str, Term] = {}
    for word in _WORD_RE.findall(strip_markers(topic).lower()):
        if len(word) < 2 or word.isdigit() or word in _STOP_WORDS or word in _TOPIC_FILLER:
            continue
        stemmed = stem(word)
        terms.setdefault(stemmed, Term(stemmed, word))
    return tuple(terms.values())


def idf(term: str, term_sets: Sequence[Collection[str]]) -> float:
    """Smoothed inverse document frequency of `term` over `term_sets`; always positive."""
    frequency = sum(1 for terms in term_sets if term in terms)
    return math.log((1 + len(term_sets)) / (1 + frequency)) + 1.0


def word_count(*texts: str) -> int:
    """Whitespace-separated tokens in all `texts` together."""
    return sum(len(text.split()) for text in texts)
