"""What the fake OpenAI server answers: cited drafts, critiques, equivalence verdicts, token
counts, all derived deterministically from the request body."""

from __future__ import annotations

import json
import re
from typing import Any


_WORDS_PER_DELTA = 4
_DOC_LINE = re.compile(r"^[ \t]*\[(\d{1,6})\][ \t]*(.*)$", re.MULTILINE)
_TITLE_PREFIX = re.compile(r"^(?:title\s*:\s*)", re.IGNORECASE)


def _text_of(content: Any) -> str:
    """The text of a message's content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's messages that are objects."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def count_words(text: str) -> int:
    """Whitespace-separated words: the fake's token count."""
    return len(text.split())


def prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt's token count: words of every message's content."""
    return sum(count_words(_text_of(m.get("content"))) for m in _messages(body))


def documents_in(body: dict[str, Any]) -> dict[int, str]:
    """The numbered documents of the user messages: {n: title} from lines starting `[n]`."""
    text = "\n".join(_text_of(m.get("content")) for m in _messages(body) if m.get("role") == "user")
    documents: dict[int, str] = {}
    for match in _DOC_LINE.finditer(text):
        index = int(match.group(1))
        if index in documents:
            continue
        title = _TITLE_PREFIX.sub("", match.group(2).strip())
        words = title.split()[:10]
        title = " ".join(words).strip(" \t\"'.,;:-") if words else ""
        documents[index] = title or f"Document {index}"
    return documents


_DRAFT_SENTENCES = (
    "{title} addresses the question directly [{n}].",
    "{title} provides supporting evidence [{n}].",
    "{title} offers a complementary perspective [{n}].",
)
_MISSING_SENTENCE = "Further evidence comes from a source that was not supplied [99]."


def draft_text(body: dict[str, Any], *, cite_missing: bool = False) -> str:
    """A short cited draft: 2-3 sentences, each ending with the `[n]` of a supplied document."""
    documents = sorted(documents_in(body).items())
    if documents:
        sentences = []
        for i in range(max(2, min(3, len(documents)))):
            n, title = documents[i % len(documents)]
            sentences.append(_DRAFT_SENTENCES[i].format(title=title, n=n))
    else:
        sentences = ["No numbered documents were supplied, so this answer cites none."]
    if cite_missing:
        sentences.append(_MISSING_SENTENCE)
    return " ".join(sentences)


def critique_json(body: dict[str, Any], score: float) -> str:
    """A critique as JSON: issues and suggestions are non-empty below a perfect 10."""
    issues: list[str] = []
    suggestions: list[str] = []
    if score < 10:
        documents = sorted(documents_in(body).items())
        issues.append("Some claims are not supported by a cited document.")
        if documents:
            n, title = documents[0]
            suggestions.append(f'Add evidence from [{n}] "{title}" to support each claim.')
        else:
            suggestions.append("Cite a supplied document for every claim.")
        if score < 7:
            issues.append("The answer is too short to cover the question.")
            suggestions.append("Expand the answer with one more cited sentence.")
    return json.dumps({"score": score, "issues": issues, "suggestions": suggestions})


def is_equivalence_question(body: dict[str, Any]) -> bool:
    """Whether the request asks whether two questions are the same (a JSON reply with a
    "same_question" field, as the embedding service's LLM verifier asks)."""
    return any('"same_question"' in _text_of(m.get("content")) for m in _messages(body))


def is_critique(body: dict[str, Any]) -> bool:
    """Whether the request asks for JSON output (`response_format` json_object/json_schema)."""
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )


def split_deltas(text: str, words: int = _WORDS_PER_DELTA) -> list[str]:
    """`text` in pieces of about `words` words that concatenate back to exactly `text`."""
    tokens = re.findall(r"\s*\S+\s*", text) or ([text] if text else [])
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]
