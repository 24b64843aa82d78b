"""arXiv through the `arxiv` package: off the event loop, with an HTTP timeout and the
spacing between requests that arXiv asks of every client (3 s by default)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Callable
from typing import Any

import arxiv
import requests

from ponder_research.bm25 import tokenize
from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.sources import Query


_VERSION = re.compile(r"v\d+$")
_ATOM = b"http://www.w3.org/2005/Atom"


class RequestSpacing:
    """Spaces the starts of requests at least `interval` seconds apart, process-wide.

    Each caller reserves the next free slot at once and sleeps until it; a caller cancelled
    while waiting (timeout) leaves its slot unused, which only errs on the polite side.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._next = 0.0

    async def wait(self) -> None:
        """Return when this caller may send its request."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class MalformedFeedError(Exception):
    """arXiv answered something that is not an Atom feed."""


class _StrictClient(arxiv.Client):  # type: ignore[misc]
    """An arxiv.Client that reports an unparseable feed instead of returning no results."""

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0) -> Any:
        feed = super()._parse_feed(url, first_page=first_page, _try_index=_try_index)
        if feed.malformed:
            raise MalformedFeedError(f"malformed arXiv feed: {feed.error}")
        return feed

    def first_page(self, search: arxiv.Search, size: int) -> list[arxiv.Result]:
        """One request only (the spacing between requests is ours to keep): the first `size`
        results, never a second page."""
        feed = self._parse_feed(self._format_url(search, 0, size), first_page=True)
        return list(feed.results)


class _TimeoutSession(requests.Session):
    """A requests session that gives every request a timeout (the arxiv package sets none,
    so a hung server would block its thread forever)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        """Send with the default timeout unless the caller gave one; a 200 reply that is not
        an Atom feed (an HTML error page from a proxy, say) is an error, not "no results"."""
        kwargs.setdefault("timeout", self._timeout)
        response = super().request(*args, **kwargs)
        if response.status_code == requests.codes.ok and _ATOM not in response.content[:4096]:
            raise MalformedFeedError(
                f"malformed arXiv reply: not an Atom feed ({response.content[:60]!r})"
            )
        return response


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


def arxiv_query(text: str, max_terms: int = 8) -> str:
    """arXiv search syntax for a natural-language query: its content words in every field,
    any of them (arXiv then sorts by relevance), e.g. `all:retrieval OR all:augmented`."""
    terms = list(dict.fromkeys(tokenize(text)))[:max_terms]
    return " OR ".join(f"all:{term}" for term in terms) or f'all:"{text.strip()}"'


def short_id(entry_id: str) -> str:
    """The bare arXiv id ("2005.11401") of an entry URL like http://arxiv.org/abs/2005.11401v4."""
    return _VERSION.sub("", entry_id.rsplit("/abs/", 1)[-1])


def to_document(result: arxiv.Result) -> FoundDocument:
    """Map an arxiv.Result to a FoundDocument."""
    paper = short_id(result.entry_id)
    return FoundDocument(
        id=f"arxiv:{paper}",
        title=" ".join(result.title.split()),
        summary=" ".join(result.summary.split()),
        source=SourceKind.ARXIV,
        authors=tuple(author.name for author in result.authors),
        url=f"https://arxiv.org/abs/{paper}",
        published=_date(result.published),
        updated=_date(result.updated),
        categories=tuple(result.categories),
        pdf_url=result.pdf_url or f"https://arxiv.org/pdf/{paper}",
        found_in=(SourceKind.ARXIV,),
        doi=result.doi or "",
        arxiv_id=paper,
    )


class ArxivSource:
    """Searches the arXiv API (or a server that speaks it, at `api_url`)."""

    kind = SourceKind.ARXIV

    def __init__(self, api_url: str, *, http_timeout: float, spacing: RequestSpacing) -> None:
        self._query_url_format = api_url.rstrip("?") + "?{}"
        self._http_timeout = http_timeout
        self._spacing = spacing

    def _search_blocking(self, query: Query) -> list[FoundDocument]:
        client = _StrictClient(page_size=query.limit, delay_seconds=0.0, num_retries=0)
        client.query_url_format = self._query_url_format
        client._session = _TimeoutSession(self._http_timeout)
        search = arxiv.Search(
            query=arxiv_query(query.text),
            max_results=query.limit,
            sort_by=arxiv.SortCriterion.Relevance,
        )
        try:
            return [to_document(result) for result in client.first_page(search, query.limit)]
        finally:
            client._session.close()

    async def search(self, query: Query) -> list[FoundDocument]:
        """One API request, after the process-wide spacing, on a worker thread."""
        await self._spacing.wait()
        return await asyncio.to_thread(self._search_blocking, query)
