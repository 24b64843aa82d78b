"""The reference REST backend for bench/bench_rest.py: the seed's FastAPI design (ADR-004).

Usage: .venv/bin/python bench/rest_reference.py --port P [--log-file F] [--answer-bytes N]

`POST /workflows/reflection` with `{"topic": "..."}` answers a `ReflectionWorkflowResponse`
(workflow_id, status, execution_time, cached, result). The first request for a topic "runs" the
workflow (a cited summary with its references: about 2.1 KB of JSON, or `--answer-bytes`) and
keeps it in an in-memory dict; repeats of the topic are cache hits, the path benchmarks load.

Middleware, outermost first, as in the seed: JSON access logging (python-json-logger, one
structured line per request with its correlation id) -> a per-client-IP token-bucket rate
limiter -> CORS (starlette's CORSMiddleware). The first two are written as pure ASGI
middleware, not BaseHTTPMiddleware (which costs about 5x on these machines), so the reference
is the seed's design done the fast way. The rate limit is high by default so a benchmark is not
throttled, but every request still takes a token.

Served by uvicorn, one worker, httptools, uvicorn's default event loop (`auto`: uvloop when it is
installed, as the seed's ADR asks). uvicorn's own access log is off: the logging middleware is
the access log.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from pythonjsonlogger.json import JsonFormatter
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send


correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
access_logger = logging.getLogger("reference.access")


# --- models (backend/app/models/schemas.py in the seed) ---------------------------------------


class ReflectionRequest(BaseModel):
    """Body of POST /workflows/reflection."""

    topic: str = Field(min_length=1, max_length=2000)


class Reference(BaseModel):
    """A source the summary cites as [n]."""

    id: int
    title: str
    authors: list[str]
    year: int
    url: str
    source: str


class ReflectionResult(BaseModel):
    """A reflection workflow's outcome: a cited summary, its references and the critique."""

    topic: str
    summary: str
    references: list[Reference]
    iterations: int
    score: float
    critique: str
    model: str
    tokens_used: int


class ReflectionWorkflowResponse(BaseModel):
    """The seed's response shape."""

    workflow_id: str
    status: Literal["completed", "failed"]
    execution_time: float
    cached: bool
    result: ReflectionResult


# --- the workflow and its cache ----------------------------------------------------------------

_REFERENCES = [
    Reference(
        id=1,
        title="Reflexion: Language Agents with Verbal Reinforcement Learning",
        authors=["Noah Shinn", "Federico Cassano", "Edward Berman", "Ashwin Gopinath"],
        year=2023,
        url="https://arxiv.org/abs/2303.11366",
        source="arxiv",
    ),
    Reference(
        id=2,
        title="Self-Refine: Iterative Refinement with Self-Feedback",
        authors=["Aman Madaan", "Niket Tandon", "Prakhar Gupta", "Skyler Hallinan"],
        year=2023,
        url="https://arxiv.org/abs/2303.17651",
        source="arxiv",
    ),
    Reference(
        id=3,
        title="Self-RAG: Learning to Retrieve, Generate, and Critique through Self-Reflection",
        authors=["Akari Asai", "Zeqiu Wu", "Yizhong Wang", "Avirup Sil", "Hannaneh Hajishirzi"],
        year=2023,
        url="https://arxiv.org/abs/2310.11511",
        source="arxiv",
    ),
    Reference(
        id=4,
        title="Large Language Models Cannot Self-Correct Reasoning Yet",
        authors=["Jie Huang", "Xinyun Chen", "Swaroop Mishra", "Huaixiu Steven Zheng"],
        year=2023,
        url="https://arxiv.org/abs/2310.01798",
        source="arxiv",
    ),
]

_SUMMARY = (
    "Language agents improve their answers by critiquing their own drafts and retrying with "
    "that critique in context. Reflexion stores verbal feedback from failed attempts in an "
    "episodic memory and conditions the next attempt on it, which raised pass@1 on HumanEval "
    "without any weight updates [1]. Self-Refine applies the same loop within one task: the "
    "model drafts, gives itself specific feedback, and rewrites, improving outputs across seven "
    "tasks by about 20% on average [2]. Self-RAG adds retrieval to the loop, emitting reflection "
    "tokens that decide when to retrieve and whether a passage supports the claim [3]. The gains "
    "depend on the quality of the feedback: without external signals such as tests, tools or "
    "retrieved evidence, self-correction of reasoning often fails to help and can hurt [4]."
)


# Appended to the summary to make answers bigger (`--answer-bytes`), cycling through the sources.
_MORE = (
    "Reflexion keeps its reflections across trials, so later attempts avoid earlier mistakes "
    "[1]. Self-Refine needs no training data or reinforcement learning, only the model's own "
    "feedback [2]. Self-RAG retrieves on demand instead of always, and critiques each passage "
    "[3]. Intrinsic self-correction without feedback rarely fixes reasoning errors [4]. "
)


def run_workflow(topic: str, summary_extra: int = 0) -> ReflectionResult:
    """Stand-in for SimpleReflectionWorkflow.execute: the result of a finished run, its summary
    longer by `summary_extra` characters."""
    more = (_MORE * (summary_extra // len(_MORE) + 1))[:summary_extra]
    return ReflectionResult(
        topic=topic,
        summary=f"{_SUMMARY} {more}".rstrip(),
        references=_REFERENCES,
        iterations=2,
        score=8.5,
        critique="Well grounded; every claim is cited. Could quantify the Self-RAG results.",
        model="gpt-4o-mini",
        tokens_used=2874,
    )


def summary_extra_for(answer_bytes: int, topic: str) -> int:
    """How many characters to add to the summary for answers of about `answer_bytes` bytes
    (0: none, the natural size of about 2.1 KB)."""
    if answer_bytes <= 0:
        return 0
    sample = ReflectionWorkflowResponse(
        workflow_id=str(uuid.uuid4()),
        status="completed",
        execution_time=1.2345678901234e-05,
        cached=True,
        result=run_workflow(topic),
    )
    return max(0, answer_bytes - len(sample.model_dump_json()) - 1)


class WorkflowCache:
    """The seed's in-memory cache of finished results, keyed by topic."""

    def __init__(self) -> None:
        self._results: dict[str, ReflectionResult] = {}
        self.answer_bytes = 0  # 0: natural size; else pad new results to about this many

    def get(self, topic: str) -> ReflectionResult | None:
        """The cached result for `topic`, if any."""
        return self._results.get(topic)

    def put(self, topic: str, result: ReflectionResult) -> None:
        """Remember a finished result."""
        self._results[topic] = result


cache = WorkflowCache()
router = APIRouter()


@router.post("/workflows/reflection", response_model=ReflectionWorkflowResponse)
async def execute_reflection(request: ReflectionRequest) -> ReflectionWorkflowResponse:
    """Run a reflection workflow on a topic; a repeated topic is answered from the cache."""
    workflow_id = str(uuid.uuid4())
    start_time = time.perf_counter()
    result = cache.get(request.topic)
    cached = result is not None
    if result is None:
        result = run_workflow(request.topic, summary_extra_for(cache.answer_bytes, request.topic))
        cache.put(request.topic, result)
    return ReflectionWorkflowResponse(
        workflow_id=workflow_id,
        status="completed",
        execution_time=time.perf_counter() - start_time,
        cached=cached,
        result=result,
    )


# --- middleware (backend/app/middleware/ in the seed), pure ASGI -------------------------------


class LoggingMiddleware:
    """One structured JSON log line per request, with a correlation id (taken from the
    `x-correlation-id` request header or made up) that is also sent back as a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = ""
        for name, value in scope["headers"]:
            if name == b"x-correlation-id":
                cid = value.decode("latin-1")
                break
        cid = cid or uuid.uuid4().hex
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-correlation-id", cid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            access_logger.info(
                "request completed",
                extra={
                    "correlation_id": cid,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status_code": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "client_ip": client[0] if client else "",
                },
            )
            correlation_id.reset(token)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimitMiddleware:
    """A token bucket per client IP (LRU-bounded): `rate` requests per second, bursts of
    `burst`; over the limit, 429 with Retry-After."""

    def __init__(
        self, app: ASGIApp, *, rate: float, burst: int, max_clients: int = 100_000
    ) -> None:
        self.app = app
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one token; 0, or the seconds until one is free."""
        now = time.monotonic()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(client)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.take(client[0] if client else "")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        body = b'{"detail":"rate limit exceeded"}'
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(max(1, round(wait))).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# --- the application (backend/main.py in the seed) ---------------------------------------------


def create_app(*, rate: float, burst: int) -> FastAPI:
    """The seed's app: the router and its middleware stack."""
    app = FastAPI(title="Ponder reference (seed design)")
    app.include_router(router)
    # add_middleware wraps: the last added runs first (Logging -> RateLimiter -> CORS).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["http://localhost:3000", "http://localhost:5173"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(RateLimitMiddleware, rate=rate, burst=burst)
    app.add_middleware(LoggingMiddleware)
    return app


def configure_access_log(path: str) -> None:
    """JSON lines to `path` (os.devnull by default: every line is still formatted)."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    formatter = JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )
    handler.setFormatter(formatter)
    access_logger.handlers[:] = [handler]
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--log-file", default="/dev/null", help="where access lines go")
    parser.add_argument("--rate", type=float, default=1e6, help="requests/s per client IP")
    parser.add_argument("--burst", type=int, default=1_000_000)
    parser.add_argument(
        "--answer-bytes",
        type=int,
        default=0,
        help="pad results' summaries so answers are about this big (0: natural, ~2.1 KB)",
    )
    args = parser.parse_args()
    configure_access_log(args.log_file)
    cache.answer_bytes = args.answer_bytes
    uvicorn.run(
        create_app(rate=args.rate, burst=args.burst),
        host=args.host,
        port=args.port,
        http="httptools",
        loop="auto",
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
