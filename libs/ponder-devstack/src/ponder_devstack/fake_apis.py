"""Local HTTP servers that speak the arXiv API (Atom) and Tavily's search API (JSON), for
tests and benchmarks: the real `arxiv` and `tavily-python` clients talk to them on 127.0.0.1.

Each serves documents of the sample library, matched by the query's words, and can be told
to be slow, to fail with an HTTP status, to send a malformed payload, or to find nothing.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape


def sample_papers() -> list[dict[str, Any]]:
    """The research service's sample library records."""
    text = (resources.files("ponder_research") / "data" / "sample_library.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


@dataclass
class Behaviour:
    """What the server does next; tests change it between calls."""

    latency: float = 0.0
    status: int = 200
    malformed: bool = False
    empty: bool = False
    retry_after: str = ""


@dataclass
class FakeApi:
    """A running fake API: its base URL, its behaviour and the requests it received."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (time, path, body)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


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


def _serve(kind: str) -> FakeApi:
    papers = sample_papers()
    holder: dict[str, FakeApi] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            api = holder["api"]
            if status == 429 and api.behaviour.retry_after:
                self.send_header("Retry-After", api.behaviour.retry_after)
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, query: str, limit: int, body_text: str) -> None:
            api = holder["api"]
            api.requests.append((time.monotonic(), self.path, body_text))
            behaviour = api.behaviour
            if behaviour.latency:
                time.sleep(behaviour.latency)
            content_type = "application/atom+xml" if kind == "arxiv" else "application/json"
            if behaviour.status != 200:
                error = json.dumps({"detail": {"error": f"fake {behaviour.status}"}}).encode()
                self._reply(behaviour.status, error, "application/json")
                return
            if behaviour.malformed:
                self._reply(
                    200,
                    b"<html>upstream proxy error</html"
                    if kind == "arxiv"
                    else b'{"results": "not a list"',
                    content_type,
                )
                return
            found = [] if behaviour.empty else _match(papers, query, limit)
            if kind == "arxiv":
                self._reply(200, atom_feed(found, len(found)), content_type)
            else:
                self._reply(200, tavily_results(found, query), content_type)

        def do_GET(self) -> None:
            """arXiv: /api/query?search_query=...&max_results=N"""
            args = parse_qs(urlsplit(self.path).query)
            query = " ".join(args.get("search_query", [""])).replace("all:", " ")
            self._handle(query, int(args.get("max_results", ["10"])[0]), "")

        def do_POST(self) -> None:
            """Tavily: POST /search {"query": ..., "max_results": N}"""
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            body = json.loads(raw or "{}")
            self._handle(str(body.get("query", "")), int(body.get("max_results") or 5), raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name=f"fake-{kind}")
    api = FakeApi(server, thread)
    holder["api"] = api
    thread.start()
    return api


def serve_fake_arxiv() -> FakeApi:
    """A fake arXiv API; point the client at f"{api.base_url}/api/query"."""
    return _serve("arxiv")


def serve_fake_tavily() -> FakeApi:
    """A fake Tavily API; point AsyncTavilyClient's api_base_url at api.base_url."""
    return _serve("tavily")
