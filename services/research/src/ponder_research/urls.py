"""URL normalisation and identifiers (arXiv ids, DOIs) used to recognise the same document."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit


_ARXIV_URL = re.compile(
    r"arxiv\.org/(?:abs|pdf|html)/((?:\d{4}\.\d{4,5})|(?:[a-z-]+(?:\.[A-Z]{2})?/\d{7}))(?:v\d+)?",
    re.IGNORECASE,
)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_NAMES = frozenset({"ref", "ref_src", "ref_url", "fbclid", "gclid", "mc_cid", "mc_eid"})


def arxiv_id_from_url(url: str) -> str:
    """The bare arXiv id in an arxiv.org abs/pdf/html URL ("" otherwise)."""
    match = _ARXIV_URL.search(url)
    return match.group(1) if match else ""


def doi_from_text(text: str) -> str:
    """The first DOI in a string (lowercased, trailing punctuation dropped), or ""."""
    match = _DOI.search(text)
    return match.group(1).rstrip(".,;)").lower() if match else ""


def _tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def normalize_url(url: str) -> str:
    """A canonical form: lowercase host without "www.", no scheme, fragment, tracking query
    parameters or trailing slash; arXiv abs/pdf URLs become "arxiv.org/abs/<id>"."""
    paper = arxiv_id_from_url(url)
    if paper:
        return f"arxiv.org/abs/{paper}"
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().removeprefix("www.")
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _tracking(k)))
    path = parts.path.rstrip("/")
    return f"{host}{path}" + (f"?{query}" if query else "")
