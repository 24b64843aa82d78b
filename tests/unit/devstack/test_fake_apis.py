"""The fake arXiv and Tavily servers take the knobs shared with the fake OpenAI server."""

from __future__ import annotations

import json

import httpx

from ponder_devstack.fake_apis import serve_fake_arxiv, serve_fake_tavily


QUERY = {"search_query": "all:retrieval", "max_results": "2"}


def test_arxiv_fails_once_then_rate_limits_then_answers() -> None:
    """fail_next answers its status once, a rate-limit fraction of 1 answers 429 with the
    Retry-After knob, and with the knobs back the same query gets an Atom feed."""
    api = serve_fake_arxiv()
    try:
        api.behaviour.update(fail_next=1, status_when_failing=503)
        with httpx.Client(base_url=api.base_url, timeout=5) as http:
            failed = http.get("/api/query", params=QUERY)
            api.behaviour.update(rate_limit_fraction=1.0, retry_after="2")
            limited = http.get("/api/query", params=QUERY)
            api.behaviour.update(rate_limit_fraction=0.0)
            answered = http.get("/api/query", params=QUERY)
        assert failed.status_code == 503
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
        assert answered.status_code == 200
        assert answered.content.count(b"<entry>") == 2
        assert [path for _, path, _ in api.requests] == [
            "/api/query?search_query=all%3Aretrieval&max_results=2"
        ] * 3
    finally:
        api.close()


def test_tavily_records_the_body_and_honours_status() -> None:
    """A Tavily search is recorded with its JSON body; the `status` knob answers every call
    with that status (no Retry-After unless it is a 429 with one set)."""
    api = serve_fake_tavily()
    try:
        with httpx.Client(base_url=api.base_url, timeout=5) as http:
            found = http.post("/search", json={"query": "dense retrieval", "max_results": 1})
            api.behaviour.update(status=502)
            failed = http.post("/search", json={"query": "dense retrieval"})
        assert found.status_code == 200
        assert len(found.json()["results"]) == 1
        assert failed.status_code == 502
        assert "retry-after" not in failed.headers
        assert json.loads(api.requests[0][2]) == {"query": "dense retrieval", "max_results": 1}
    finally:
        api.close()
