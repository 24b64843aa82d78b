"""Proto comments as OpenAPI text: Markdown descriptions and one-sentence summaries."""

import re


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"(])")
_CROSS_REFERENCE = re.compile(r"\[([^\[\]]+)\]\[[A-Za-z0-9_.]*\]")


def markdown_of(comment: str) -> str:
    """A proto comment as Markdown: AIP-192 cross references, `[Status][google.rpc.Status]`,
    become code spans of their text (they are no Markdown links)."""
    return _CROSS_REFERENCE.sub(r"`\1`", comment)


def summary_of(comment: str) -> str:
    """The first sentence of a comment's first paragraph, on one line."""
    paragraph = comment.strip().split("\n\n", 1)[0]
    one_line = " ".join(paragraph.split())
    return _SENTENCE_END.split(one_line, maxsplit=1)[0]
