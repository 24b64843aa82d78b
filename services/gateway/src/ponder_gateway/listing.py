"""ListWorkflows: opaque page tokens, each tied to the filter it was made for."""

from __future__ import annotations

import base64
import hashlib

from ponder_runtime import FieldViolation, InvalidArgumentError


def _digest(filter_text: str) -> str:
    return hashlib.sha256(filter_text.encode()).hexdigest()[:8]


def token_at(position: tuple[int, str], filter_text: str) -> str:
    """A token that resumes after the (create_time ns, name) `position` for the same filter:
    a keyset position, so records inserted meanwhile never shift the pages."""
    raw = f"{_digest(filter_text)}|{position[0]}|{position[1]}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def read_token(token: str, filter_text: str) -> tuple[int, str] | None:
    """The (create_time, name) position a token resumes after; INVALID_ARGUMENT when it is
    malformed or was made for another filter."""
    if not token:
        return None
    try:
        digest, nanos, name = base64.urlsafe_b64decode(token.encode()).decode().split("|", 2)
        position = (int(nanos), name)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgumentError(
            [FieldViolation("page_token", "is not a valid page token")]
        ) from None
    if digest != _digest(filter_text):
        raise InvalidArgumentError([FieldViolation("page_token", "was made for another filter")])
    return position
