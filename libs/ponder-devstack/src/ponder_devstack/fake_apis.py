"""Local HTTP servers that speak the arXiv API (Atom) and Tavily's search API (JSON), for
tests and benchmarks: the real `arxiv` and `tavily-python` clients talk to them on 127.0.0.1.

Each serves documents of the sample library, matched by the query's words, and can be told
(its `Behaviour`) to be slow, to fail with an HTTP status, to rate limit, to hang, to send a
malformed payload, or to find nothing. Each is a small ASGI app served by uvicorn.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from ponder_devstack import fake_knobs
from ponder_devstack.fake_serve import Call, Receive, Scope, Send, Served


def sample_papers() -> list[dict[str, Any]]:
    """The research service's sample library records."""
    text = (resources.files("ponder_research") / "data" / "sample_library.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


@dataclass
class Behaviour(fake_knobs.Behaviour):
    """The shared knobs, plus a malformed payload or an empty result."""

    malformed: bool = False  # a 200 whose body the client cannot parse
    empty: bool = False  # a 200 that finds nothing


@dataclass
class FakeApi:
    """A running fake API: its base URL, its behaviour and the requests it received."""

    kind: str  # "arxiv" or "tavily": the reply format
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (time, path, body)
    papers: list[dict[str, Any]] = field(default_factory=list, repr=False)
    served: Served | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        assert self.served is not None, "not started"
        return f"http://{self.served.host}:{self.served.port}"

    def close(self) -> None:
        """Stop serving."""
        if self.served is not None:
            self.served.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: GET is an arXiv query, POST a Tavily search."""
        if scope["type"] != "http":
            return
        call = Call(scope, receive, send)
        try:
            raw = (await call.read_body()).decode("utf-8", "replace")
            self.requests.append((time.monotonic(), call.target, raw))
            if call.method == "POST":  # Tavily: POST /search {"query": ..., "max_results": N}
                try:
                    body = json.loads(raw or "{}")
                except ValueError:
                    await call.respond(400, _error_body("the body is not JSON"))
                    return
                await self._answer(
                    call, str(body.get("query", "")), int(body.get("max_results") or 5)
                )
            else:  # arXiv: GET /api/query?search_query=...&max_results=N
                args = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                query = " ".join(args.get("search_query", [""])).replace("all:", " ")
                await self._answer(call, query, int(args.get("max_results", ["10"])[0]))
        finally:
            call.stop_watching()

    async def _answer(self, call: Call, query: str, limit: int) -> None:
        behaviour = self.behaviour
        if behaviour.hang:
            await call.gone.wait()
            return
        if await call.wait_gone(behaviour.latency):
            return
        content_type = "application/atom+xml" if self.kind == "arxiv" else "application/json"
        failing = behaviour.failing_status()
        if failing is None and behaviour.take_rate_limit():
            failing = 429
        if failing is not None:
            late = failing == 429 and behaviour.retry_after
            retry = {"Retry-After": behaviour.retry_after} if late else {}
            await call.respond(failing, _error_body(f"fake {failing}"), headers=retry)
        elif behaviour.malformed:
            bad = (
                b"<html>upstream proxy error</html"
                if self.kind == "arxiv"
                else b'{"results": "not a list"'
            )
            await call.respond(200, bad, content_type)
        else:
            found = [] if behaviour.empty else _match(self.papers, query, limit)
            if self.kind == "arxiv":
                await call.respond(200, atom_feed(found, len(found)), content_type)
            else:
                await call.respond(200, tavily_results(found, query), content_type)


def _match(papers: list[dict[str, Any]], query: str, limit: int) -> list[dict[str, Any]]:
    terms = _words(query)
    scored = []
    for paper in papers:
        overlap = len(terms & _words(f"{paper['title']} {paper['summary']}"))
        if overlap:
            scored.append((-overlap, paper["arxiv_id"], paper))
    return [paper for *_, paper in sorted(scored, key=lambda item: item[:2])][:limit]


def atom_feed(papers: list[dict[str, Any]], total: int) -> bytes:
    """An arXiv API Atom feed of `papers` (as the real API formats it)."""
    entries = []
    for paper in papers:
        paper_id = paper["arxiv_id"]
        stamp = f"{paper['year']}-01-01T00:00:00Z"
        authors = "".join(
            f"<author><name>{escape(a)}</name></author>" for a in paper["authors"] if a != "et al."
        )
        entries.append(
            "<entry>"
            f"<id>http://arxiv.org/abs/{paper_id}v1</id>"
            f"<updated>{stamp}</updated><published>{stamp}</published>"
            f"<title>{escape(paper['title'])}</title>"
            f"<summary>{escape(paper['summary'])}</summary>{authors}"
            f'<link href="http://arxiv.org/abs/{paper_id}v1" rel="alternate" type="text/html"/>'
            f'<link title="pdf" href="http://arxiv.org/pdf/{paper_id}v1" rel="related" '
            'type="application/pdf"/>'
            f'<arxiv:primary_category term="{paper["primary_category"]}" '
            'scheme="http://arxiv.org/schemas/atom"/>'
            f'<category term="{paper["primary_category"]}" '
            'scheme="http://arxiv.org/schemas/atom"/>'
            "</entry>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom">'
        "<id>https://arxiv.org/api/fake</id><title>arXiv Query</title>"
        "<updated>2026-01-01T00:00:00Z</updated>"
        f"<opensearch:totalResults>{total}</opensearch:totalResults>"
        "<opensearch:startIndex>0</opensearch:startIndex>"
        f"<opensearch:itemsPerPage>{len(papers)}</opensearch:itemsPerPage>"
        + "".join(entries)
        + "</feed>"
    ).encode()


def tavily_results(papers: list[dict[str, Any]], query: str) -> bytes:
    """Tavily's search reply: results as web pages (arXiv abstract pages here)."""
    results = [
        {
            "title": paper["title"],
            "url": f"https://arxiv.org/abs/{paper['arxiv_id']}",
            "content": paper["summary"],
            "score": round(0.9 - 0.05 * rank, 3),
            "raw_content": None,
        }
        for rank, paper in enumerate(papers)
    ]
    body = {
        "query": query,
        "follow_up_questions": None,
        "answer": None,
        "images": [],
        "results": results,
        "response_time": 0.01,
    }
    return json.dumps(body).encode()


def _error_body(message: str) -> bytes:
    return json.dumps({"detail": {"error": message}}).encode()


def _serve(kind: str) -> FakeApi:
    api = FakeApi(kind, papers=sample_papers())
    api.served = Served(api, f"fake-{kind}")
    return api


def serve_fake_arxiv() -> FakeApi:
    """A fake arXiv API; point the client at f"{api.base_url}/api/query"."""
    return _serve("arxiv")


def serve_fake_tavily() -> FakeApi:
    """A fake Tavily API; point AsyncTavilyClient's api_base_url at api.base_url."""
    return _serve("tavily")
