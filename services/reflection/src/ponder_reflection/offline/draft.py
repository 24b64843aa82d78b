"""The first text: the most relevant source sentences quoted under a heading, or why none."""

from ..provider import Drafted
from ..text_analysis import word_count
from ..types import TokenUsage
from .claims import Claim, render, shorten
from .corpus import Corpus
from .tuning import HEADING_TOPIC_CHARS, LISTED_TERMS, MAX_DRAFT_SENTENCES, MIN_DRAFT_SENTENCES


def write_draft(corpus: Corpus) -> Drafted:
    """Quote the most relevant, non-redundant sentences, grouped by document, each cited."""
    text = _text(corpus)
    return Drafted(text, TokenUsage(corpus.words_read(), word_count(text)))


def _text(corpus: Corpus) -> str:
    if not corpus.documents:
        return _no_sources_text(corpus.topic)
    if not corpus.relevant_docs:
        return _no_relevant_sources_text(corpus)
    chosen = corpus.select([], MAX_DRAFT_SENTENCES, MIN_DRAFT_SENTENCES)
    order = list(dict.fromkeys(c.doc for c in chosen))
    grouped = sorted(chosen, key=lambda c: (order.index(c.doc), c.position))
    return render(_heading(corpus.topic), [Claim.quote(c) for c in grouped])


def _subject(topic: str) -> str:
    """The topic on one line, shortened for quoting in a text."""
    return shorten(" ".join(topic.split()), HEADING_TOPIC_CHARS)


def _heading(topic: str) -> str:
    return f'Key points on "{_subject(topic)}" from the supplied sources:'


def _no_sources_text(topic: str) -> str:
    return (
        f'No sources were supplied for "{_subject(topic)}", so no findings can be reported and '
        "none have been made up. Supply source documents to get a cited summary."
    )


def _no_relevant_sources_text(corpus: Corpus) -> str:
    count = len(corpus.documents)
    shown = corpus.topic_terms[:LISTED_TERMS]
    terms = " or ".join(f'"{term.surface}"' for term in shown)
    if len(corpus.topic_terms) > len(shown):
        terms += " or the other topic terms"
    about = f"about {terms}" if terms else "that can be quoted"
    sources = (
        "The supplied source has no sentence"
        if count == 1
        else f"None of the {count} supplied sources has a sentence"
    )
    return (
        f'{sources} {about}, so no findings about "{_subject(corpus.topic)}" can be reported '
        "and none have been made up."
    )
