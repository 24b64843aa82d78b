"""The verifier's word lists (data/*.txt): aliases, synonyms, antonyms, stop words, with the
stemmer that makes one form of each word enough."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import snowballstemmer  # type: ignore[import-untyped]


NEGATIONS = frozenset(
    """
    not no never without none nothing nobody nowhere neither nor cannot unable lack lacks lacked
    lacking fail fails failed failing hardly barely rarely seldom absence absent
    """.split()  # noqa: SIM905 - a wrapped block reads better than a long list
)
# Words that give the things around them a role ("A over B", "from A to B", "A beats B").
ROLE_MARKERS = frozenset(
    """
    over than vs versus to from into on for by against instead rather beat beats beating
    outperform outperforms outperformed outperforming surpass surpasses surpassed replace
    replaces replaced before after
    """.split()  # noqa: SIM905 - a wrapped block reads better than a long list
)
# Words that join things without giving them roles ("A and B", "between A and B").
SYMMETRIC = frozenset(["and", "or", "between", "both", "with"])
NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "fifty": "50",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
}
MAX_PHRASE_WORDS = 8


def _lines(name: str) -> list[str]:
    text = resources.files("ponder_embedding.cache.verifier").joinpath("data", name).read_text()
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


@dataclass(frozen=True, slots=True)
class Phrase:
    """What a run of words stands for: `token` to compare, `words` to embed, `entity` when it
    names a method, model or field (an alias)."""

    token: str
    words: str
    entity: bool


@dataclass(slots=True)
class Lexicon:
    """Aliases and multi-word synonyms by word tuple, single-word synonyms and antonyms by stem."""

    phrases: dict[tuple[str, ...], Phrase] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)  # stem -> canonical stem
    antonyms: set[frozenset[str]] = field(default_factory=set)  # pairs of canonical stems
    stopwords: frozenset[str] = frozenset()
    stop_stems: frozenset[str] = frozenset()  # canonical stems of synonyms of stop words
    phrase_starts: frozenset[str] = frozenset()  # first words of `phrases` (a quick "no")
    _stemmer: object = None
    _stems: dict[str, str] = field(default_factory=dict)
    # Words whose stems are remembered at most: the memo starts again when full, so a client
    # sending endless new words costs time, never unbounded memory.
    stem_memo_limit: int = 50_000

    @classmethod
    def load(cls) -> Lexicon:
        """The packaged lists."""
        lexicon = cls(_stemmer=snowballstemmer.stemmer("english"))
        lexicon.stopwords = frozenset(w for line in _lines("stopwords.txt") for w in line.split())
        for line in _lines("aliases.txt"):
            canonical, _, rest = line.partition(" = ")
            phrase = Phrase(canonical.replace(" ", "_"), canonical, entity=True)
            for variant in [canonical, *rest.split(" | ")]:
                lexicon.phrases[tuple(variant.split())] = phrase
        for line in _lines("synonyms.txt"):
            canonical, _, rest = line.partition(" = ")
            target = lexicon.stem(canonical)
            if canonical in lexicon.stopwords:  # "what makes" = "why": a question word
                lexicon.stop_stems |= {target}
            for variant in rest.split(" | "):
                words = variant.split()
                if len(words) > 1:
                    lexicon.phrases[tuple(words)] = Phrase(target, canonical, entity=False)
                else:
                    lexicon.synonyms[lexicon.stem(words[0])] = target
        lexicon._resolve()
        lexicon.phrase_starts = frozenset(words[0] for words in lexicon.phrases)
        for line in _lines("antonyms.txt"):
            left, right = line.split()
            lexicon.antonyms.add(frozenset((lexicon.canon(left), lexicon.canon(right))))
            lexicon.antonyms.add(frozenset((lexicon.stem(left), lexicon.stem(right))))
        return lexicon

    def stem(self, word: str) -> str:
        """The Snowball stem of a lower-case word (numbers and alias tokens unchanged)."""
        found = self._stems.get(word)
        if found is None:
            if any(c.isdigit() for c in word) or "_" in word:
                found = word
            else:
                found = str(self._stemmer.stemWord(word))  # type: ignore[attr-defined]
            if len(self._stems) >= self.stem_memo_limit:
                self._stems.clear()
            self._stems[word] = found
        return found

    def canon(self, word: str) -> str:
        """The canonical stem of a word: its synonym group's, else its own stem."""
        stem = self.stem(word)
        return self.synonyms.get(stem, stem)

    def _resolve(self) -> None:
        """Follow chains (a -> b -> c becomes a -> c) so every word has one canonical stem."""
        for stem in list(self.synonyms):
            target, seen = self.synonyms[stem], {stem}
            while target in self.synonyms and target not in seen:
                seen.add(target)
                target = self.synonyms[target]
            self.synonyms[stem] = target

    def opposite(self, left: str, right: str) -> bool:
        """Whether two stems (or canonical stems) are listed as antonyms."""
        return frozenset((left, right)) in self.antonyms
