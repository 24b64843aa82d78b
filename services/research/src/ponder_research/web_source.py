"""Web search through tavily-python's AsyncTavilyClient."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import SecretStr
from tavily import AsyncTavilyClient

from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.sources import Query, SourceDisabledError
from ponder_research.urls import arxiv_id_from_url, doi_from_text, normalize_url


def _published(value: object) -> dt.date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return dt.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S %Z").date()
        except ValueError:
            return None


def to_document(result: dict[str, Any]) -> FoundDocument | None:
    """A FoundDocument for one Tavily result; None when it has no URL or title."""
    url = str(result.get("url") or "").strip()
    title = " ".join(str(result.get("title") or "").split())
    if not url or not title:
        return None
    paper = arxiv_id_from_url(url)
    return FoundDocument(
        id=f"web:{normalize_url(url)}",
        title=title,
        summary=" ".join(str(result.get("content") or "").split()),
        source=SourceKind.WEB,
        url=url,
        published=_published(result.get("published_date")),
        score=float(result.get("score") or 0.0),
        found_in=(SourceKind.WEB,),
        arxiv_id=paper,
        doi=doi_from_text(url),
    )


class WebSource:
    """Tavily web search; DISABLED (not an error) without an API key."""

    kind = SourceKind.WEB

    def __init__(self, api_key: SecretStr | None, *, api_base_url: str, timeout: float) -> None:
        self._api_key = api_key
        self._api_base_url = api_base_url
        self._timeout = timeout

    async def search(self, query: Query) -> list[FoundDocument]:
        """One Tavily search; the client is opened and closed per call."""
        if self._api_key is None or not self._api_key.get_secret_value():
            raise SourceDisabledError("no Tavily API key: set TAVILY_API_KEY to search the web")
        client = AsyncTavilyClient(
            api_key=self._api_key.get_secret_value(), api_base_url=self._api_base_url
        )
        try:
            reply = await client.search(
                query.text,
                max_results=query.limit,
                include_domains=list(query.include_domains) or None,
                exclude_domains=list(query.exclude_domains) or None,
                timeout=self._timeout,
            )
        finally:
            await client.close()
        results = reply.get("results") if isinstance(reply, dict) else None
        if not isinstance(results, list):
            raise ValueError("malformed Tavily reply: no results list")
        documents = [to_document(r) for r in results if isinstance(r, dict)]
        return [doc for doc in documents if doc is not None][: query.limit]
