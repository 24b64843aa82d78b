"""A local HTTP server that speaks OpenAI's Chat Completions API, for tests and benchmarks:
the real `openai.AsyncOpenAI(base_url=fake.base_url, api_key=...)` talks to it on 127.0.0.1.

It answers `POST /v1/chat/completions` (plain JSON or, with `"stream": true`, server-sent
events) and `GET /v1/models`. Replies are deterministic and derived from the request: with
`response_format={"type": "json_object"}` a critique `{"score", "issues", "suggestions"}`,
otherwise a short draft whose sentences cite the `[n]` documents listed in the user message.

A `Behaviour` makes it slow, failing, rate limited, hanging or malformed; the handle records
every request, the peak concurrency and the clients that went away before their reply.

The server is a minimal HTTP/1.1 implementation on asyncio (keep-alive, Content-Length and
chunked bodies, chunked streaming replies), running its own event loop in a daemon thread, so
synchronous fixtures and async tests use it alike, and thousands of concurrent slow requests
cost one coroutine each, not one thread each. It needs no third-party package. Starting one
lifts the process's soft open-files limit to 8192 where the hard limit allows (one socket per
concurrent call on each side).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import resource
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, fields
from typing import Any


_log = logging.getLogger(__name__)

_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 32 * 1024 * 1024
_BACKLOG = 4096
_OPEN_FILES = 8192
_WORDS_PER_DELTA = 4
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_DOC_LINE = re.compile(r"^[ \t]*\[(\d{1,6})\][ \t]*(.*)$", re.MULTILINE)
_TITLE_PREFIX = re.compile(r"^(?:title\s*:\s*)", re.IGNORECASE)
_MALFORMED_CRITIQUE = "Score: nine out of ten. The draft is good but could cite more sources."


@dataclass
class Behaviour:
    """What the fake does with the next calls; tests change it between (or during) calls.

    Failure knobs apply to every call of a known endpoint, in this order: `hang`, `latency`,
    `fail_next` then `error_fraction`, `status`, `rate_limit_fraction`. Counters are consumed
    under a lock.
    """

    latency: float = 0.0  # seconds before each reply
    chunk_delay: float = 0.0  # seconds between the chunks of a streamed reply
    status: int = 200  # any other value: every call answers this HTTP status
    rate_limit_fraction: float = 0.0  # this fraction of calls answer 429 (seeded, deterministic)
    retry_after: str = "0.1"  # the 429's Retry-After header ("" sends none)
    seed: int = 0  # seeds the rate-limit draws; changing it restarts the sequence
    fail_next: int = 0  # the next N calls answer `status_when_failing`
    error_fraction: float = 0.0  # this fraction of calls answer `status_when_failing` (seeded)
    status_when_failing: int = 500
    hang: bool = False  # never answer; wait until the client goes away
    malformed_json_next: int = 0  # the next N critique calls reply with non-JSON content
    critique_scores: list[float] = field(default_factory=list)  # consumed one per critique
    default_score: float = 9.0  # the critique score once `critique_scores` is exhausted
    cite_missing: bool = False  # drafts add one sentence citing [99], a document not supplied
    same_question: bool = True  # the answer to equivalence questions (the cache's LLM verifier)
    models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o")  # what GET /v1/models lists
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _rng: random.Random | None = field(default=None, init=False, repr=False)
    _rng_seed: int | None = field(default=None, init=False, repr=False)

    def update(self, **changes: Any) -> None:
        """Set several knobs at once, atomically with respect to the server."""
        knobs = {f.name for f in fields(self) if f.init}
        unknown = sorted(set(changes) - knobs)
        if unknown:
            raise AttributeError(f"Behaviour has no knob {', '.join(unknown)}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def take_failure(self) -> int | None:
        """The status of a `fail_next` or `error_fraction` failure for this call, or None."""
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return self.status_when_failing
            if self.error_fraction > 0 and self._draw() < self.error_fraction:
                return self.status_when_failing
            return None

    def take_rate_limit(self) -> bool:
        """Whether this call is rate limited (one seeded draw when the fraction is set)."""
        with self._lock:
            if self.rate_limit_fraction <= 0:
                return False
            return self._draw() < self.rate_limit_fraction

    def _draw(self) -> float:
        """The next seeded random number in [0, 1) (the caller holds the lock)."""
        if self._rng is None or self._rng_seed != self.seed:
            self._rng, self._rng_seed = random.Random(self.seed), self.seed
        return self._rng.random()

    def take_malformed(self) -> bool:
        """Whether this critique call replies with malformed JSON, consuming one."""
        with self._lock:
            if self.malformed_json_next > 0:
                self.malformed_json_next -= 1
                return True
            return False

    def take_critique_score(self) -> float:
        """The next critique score: the head of `critique_scores`, else `default_score`."""
        with self._lock:
            if self.critique_scores:
                return float(self.critique_scores.pop(0))
            return float(self.default_score)


@dataclass
class _Request:
    """One parsed HTTP request, the connection to answer on, and its JSON body."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    connection: _Connection
    json: dict[str, Any] = field(default_factory=dict)
    invalid: str = ""  # why the body is unusable, if it is
    finished: bool = False  # no longer counted in flight

    @property
    def route(self) -> str:
        """The path without query string or trailing slash."""
        return self.target.split("?", 1)[0].rstrip("/")

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection stay open after the reply."""
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


class _BadRequestError(Exception):
    """A request the server cannot parse; answered with 400 and a closed connection."""


class _Connection(asyncio.Protocol):
    """One client connection: parses HTTP/1.1 requests and runs them one after another."""

    def __init__(self, fake: FakeOpenAI) -> None:
        """A connection of `fake`, not yet made."""
        self.fake = fake
        self.transport: asyncio.Transport | None = None
        self.gone = asyncio.Event()
        self._buffer = bytearray()
        self._head: tuple[str, str, str, dict[str, str]] | None = None
        self._pending: deque[_Request] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._broken = False

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake._connections.add(self)

    def data_received(self, data: bytes) -> None:
        """Buffer bytes, queue every complete request, start the worker if idle."""
        if self._broken:
            return
        self._buffer += data
        try:
            while (request := self._parse_one()) is not None:
                self._pending.append(request)
        except _BadRequestError as err:
            self._broken = True
            self._pending.clear()
            self.write_response(400, _error_body(400, str(err)), keep_alive=False)
            self.close()
            return
        if self._pending and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
            self.fake._tasks.add(self._worker)
            self._worker.add_done_callback(self.fake._tasks.discard)

    def eof_received(self) -> bool | None:
        """The client closed its side: treat it as gone (the transport then closes)."""
        self.gone.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is closed."""
        self.gone.set()
        self._writable.set()
        self.fake._connections.discard(self)

    def pause_writing(self) -> None:
        """Flow control: the transport's buffer is full."""
        self._writable.clear()

    def resume_writing(self) -> None:
        """Flow control: the transport's buffer drained."""
        self._writable.set()

    # parsing

    def _parse_one(self) -> _Request | None:
        """The next complete request in the buffer (consumed), or None until more arrives."""
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD_BYTES:
                    raise _BadRequestError("request head too large")
                return None
            self._head = _parse_head(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
            if self._head[3].get("expect", "").lower() == "100-continue" and self.transport:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        method, path, version, headers = self._head
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = _parse_chunked(self._buffer)
            if parsed is None:
                return None
            body, used = parsed
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError as err:
                raise _BadRequestError("bad Content-Length") from err
            if length < 0 or length > _MAX_BODY_BYTES:
                raise _BadRequestError("bad Content-Length")
            if len(self._buffer) < length:
                return None
            body, used = bytes(self._buffer[:length]), length
        del self._buffer[:used]
        self._head = None
        return _Request(method, path, version, headers, body, self)

    # serving

    async def _work(self) -> None:
        """Serve the queued requests in order; close when one asks to, or the client left."""
        try:
            while self._pending:
                request = self._pending.popleft()
                keep_alive = await self.fake._handle(request)
                if not keep_alive or self.gone.is_set():
                    self.close()
                    return
        finally:
            self._worker = None

    async def wait_gone(self, seconds: float) -> bool:
        """Sleep `seconds`; True (early) when the client goes away meanwhile."""
        if seconds <= 0:
            return self.gone.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.gone.wait()
        return self.gone.is_set()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is full."""
        await self._writable.wait()

    @property
    def open(self) -> bool:
        """Whether the client is still there to read a reply."""
        return not (self.transport is None or self.transport.is_closing() or self.gone.is_set())

    def write(self, data: bytes) -> bool:
        """Write unless the connection is gone; False when it is."""
        if self.transport is None or not self.open:
            return False
        self.transport.write(data)
        return True

    def write_response(
        self,
        status: int,
        body: bytes,
        *,
        keep_alive: bool = True,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> bool:
        """Write a complete response with a Content-Length body."""
        head = _head(status, content_type, headers, keep_alive=keep_alive)
        head += f"Content-Length: {len(body)}\r\n\r\n"
        return self.write(head.encode("latin-1") + body)

    def close(self) -> None:
        """Close the connection after what was written."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _parse_head(raw: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Method, target, version and lower-cased headers of a request head."""
    try:
        text = raw.decode("latin-1")
        request_line, *lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError as err:
        raise _BadRequestError("bad request line") from err
    if not version.startswith("HTTP/1."):
        raise _BadRequestError("unsupported HTTP version")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _BadRequestError("bad header line")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return method.upper(), target, version, headers


def _parse_chunked(buffer: bytearray) -> tuple[bytes, int] | None:
    """A complete chunked body at the start of `buffer` and the bytes it used, or None."""
    body = bytearray()
    pos = 0
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = bytes(buffer[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as err:
            raise _BadRequestError("bad chunk size") from err
        pos = line_end + 2
        if size == 0:
            # Skip trailers up to the empty line.
            while True:
                line_end = buffer.find(b"\r\n", pos)
                if line_end < 0:
                    return None
                empty = line_end == pos
                pos = line_end + 2
                if empty:
                    return bytes(body), pos
        if len(buffer) < pos + size + 2:
            return None
        body += buffer[pos : pos + size]
        if len(body) > _MAX_BODY_BYTES:
            raise _BadRequestError("body too large")
        pos += size + 2


def _head(
    status: int, content_type: str, headers: dict[str, str] | None, *, keep_alive: bool
) -> str:
    """A response's status line and headers, without the blank line that ends them."""
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Type: {content_type}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return "\r\n".join(lines) + "\r\n"


def _error_body(status: int, message: str) -> bytes:
    """An OpenAI-style error body: {"error": {message, type, param, code}}."""
    error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error")
    code = "rate_limit_exceeded" if status == 429 else None
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return json.dumps({"error": error}).encode()


def _dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


# Reply content


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


# The server


@dataclass
class FakeOpenAI:
    """A running fake OpenAI API: its base URL, its behaviour and what it has seen."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    host: str = "127.0.0.1"
    requests: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    disconnects: int = 0
    calls_by_status: Counter[int] = field(default_factory=Counter)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop: asyncio.Event | None = field(default=None, init=False, repr=False)
    _connections: set[_Connection] = field(default_factory=set, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _sequence: int = field(default=0, init=False, repr=False)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>/v1, what AsyncOpenAI's `base_url` wants."""
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        """Forget the records and restore the default behaviour (call between tests)."""
        self.behaviour = Behaviour()
        self.requests.clear()
        self.max_in_flight = self.in_flight
        self.disconnects = 0
        self.calls_by_status.clear()

    def start(self) -> None:
        """Listen on a free port, serving from a daemon thread; returns once listening."""
        _raise_open_files_limit()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            """The server thread: its own event loop until close()."""
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as err:
                failure.append(err)
            finally:
                ready.set()
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-openai")
        self._thread.start()
        ready.wait()
        if failure:
            raise RuntimeError("the fake OpenAI server failed to start") from failure[0]

    def close(self) -> None:
        """Stop serving: close every connection (hanging calls see a disconnect)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> FakeOpenAI:
        """Use as a context manager that closes on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close."""
        self.close()

    async def _serve(self, ready: threading.Event) -> None:
        """Listen, signal `ready`, serve until close(), then drop every connection."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=_BACKLOG
        )
        self.port = int(server.sockets[0].getsockname()[1])
        ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for connection in list(self._connections):
                if connection.transport is not None:
                    connection.transport.abort()
            for _ in range(3):  # let connection_lost callbacks and woken handlers run
                await asyncio.sleep(0)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    # request handling (on the server's loop)

    async def _handle(self, request: _Request) -> bool:
        """Serve one request; returns whether the connection may be kept alive."""
        if request.body:
            try:
                parsed = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                request.invalid = "We could not parse the JSON body of your request."
            else:
                if isinstance(parsed, dict):
                    request.json = parsed
                else:
                    request.invalid = "The request body must be a JSON object."
        self.requests.append((time.monotonic(), request.route, request.json))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._respond(request)
        except Exception:
            _log.exception("fake OpenAI failed on %s %s", request.method, request.route)
            self._send(request, 500, _error_body(500, "fake server error"))
        finally:
            self._finish(request)
        return request.keep_alive

    def _finish(self, request: _Request) -> None:
        """Take the call out of `in_flight`; done before its last bytes go out, so that a
        client that has its reply always sees the records up to date."""
        if not request.finished:
            request.finished = True
            self.in_flight -= 1

    def _gone(self, request: _Request) -> None:
        """Record a client that went away before its reply."""
        self._finish(request)
        self.disconnects += 1

    def _send(
        self, request: _Request, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Answer with a complete response, or record a disconnect if the client left."""
        self._sequence += 1
        all_headers = {"x-request-id": f"req_fake{self._sequence:08d}", **(headers or {})}
        connection = request.connection
        if not connection.open:
            self._gone(request)
            return
        self._finish(request)
        self.calls_by_status[status] += 1
        connection.write_response(status, body, keep_alive=request.keep_alive, headers=all_headers)

    def _rejection(self, request: _Request) -> tuple[int, str] | None:
        """An error for an unknown path, a wrong method or a bad body, or None."""
        route = request.route
        expected = {"/v1/chat/completions": "POST", "/v1/models": "GET"}.get(route)
        if expected is None and not route.startswith("/v1/models/"):
            return 404, f"Unknown request URL: {request.method} {route}."
        if request.method != (expected or "GET"):
            return 405, f"Method {request.method} is not allowed on {route}."
        if request.invalid:
            return 400, request.invalid
        return None

    async def _survives_knobs(self, request: _Request, behaviour: Behaviour) -> bool:
        """Apply hang, latency and the failure knobs; False when the call is over."""
        connection = request.connection
        if behaviour.hang:
            await connection.gone.wait()
            self._gone(request)
            return False
        if await connection.wait_gone(behaviour.latency):
            self._gone(request)
            return False
        failing = behaviour.take_failure()
        if failing is None and behaviour.status != 200:
            failing = behaviour.status
        if failing is not None:
            message = f"The fake server answers {failing} (as configured)."
            self._send(request, failing, _error_body(failing, message))
            return False
        if behaviour.take_rate_limit():
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            message = "Rate limit reached for requests (fake). Please try again later."
            self._send(request, 429, _error_body(429, message), headers)
            return False
        return True

    async def _respond(self, request: _Request) -> None:
        """Route the request, apply the behaviour and answer."""
        rejection = self._rejection(request)
        if rejection is not None:
            self._send(request, rejection[0], _error_body(*rejection))
            return
        behaviour = self.behaviour
        if not await self._survives_knobs(request, behaviour):
            return
        route, body = request.route, request.json
        if route == "/v1/models":
            self._send(request, 200, _dumps(self._model_list(behaviour)))
        elif route.startswith("/v1/models/"):
            self._model(request, route.removeprefix("/v1/models/"), behaviour)
        elif body.get("stream") is True:
            await self._stream(request, behaviour)
        else:
            self._send(request, 200, _dumps(self._completion(body, behaviour)))

    def _model(self, request: _Request, name: str, behaviour: Behaviour) -> None:
        """Answer GET /v1/models/<name>."""
        for model in self._model_list(behaviour)["data"]:
            if model["id"] == name:
                self._send(request, 200, _dumps(model))
                return
        message = f"The model `{name}` does not exist or you do not have access to it."
        self._send(request, 404, _error_body(404, message))

    @staticmethod
    def _model_list(behaviour: Behaviour) -> dict[str, Any]:
        """The model list GET /v1/models answers."""
        data = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "ponder-fake"}
            for name in behaviour.models
        ]
        return {"object": "list", "data": data}

    def _content(self, body: dict[str, Any], behaviour: Behaviour) -> str:
        """The reply's text: an equivalence verdict, a critique (maybe malformed) or a cited
        draft."""
        if is_equivalence_question(body):
            return json.dumps({"same_question": behaviour.same_question})
        if is_critique(body):
            if behaviour.take_malformed():
                return _MALFORMED_CRITIQUE
            return critique_json(body, behaviour.take_critique_score())
        return draft_text(body, cite_missing=behaviour.cite_missing)

    def _next_id(self) -> str:
        """A new chat completion id."""
        self._sequence += 1
        return f"chatcmpl-fake{self._sequence:08d}"

    def _completion(self, body: dict[str, Any], behaviour: Behaviour) -> dict[str, Any]:
        """A non-streaming ChatCompletion for the request."""
        content = self._content(body, behaviour)
        prompt, completion = prompt_tokens(body), count_words(content)
        return {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    async def _stream(self, request: _Request, behaviour: Behaviour) -> None:
        """Answer with server-sent chat.completion.chunk events, then [DONE]."""
        body, connection = request.json, request.connection
        content = self._content(body, behaviour)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base = {
            "id": self._next_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            """One chunk carrying `delta`."""
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in split_deltas(content)]
        events.append(chunk({}, "stop"))
        if include_usage:
            prompt, completion = prompt_tokens(body), count_words(content)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            events.append({**base, "choices": [], "usage": usage})

        self._sequence += 1
        headers = {"x-request-id": f"req_fake{self._sequence:08d}", "Cache-Control": "no-cache"}
        head = _head(
            200, "text/event-stream; charset=utf-8", headers, keep_alive=request.keep_alive
        )
        if not connection.open:
            self._gone(request)
            return
        self.calls_by_status[200] += 1
        connection.write((head + "Transfer-Encoding: chunked\r\n\r\n").encode("latin-1"))
        payloads = [b"data: " + _dumps(event) + b"\n\n" for event in events]
        payloads.append(b"data: [DONE]\n\n")
        for i, payload in enumerate(payloads):
            if i and await connection.wait_gone(behaviour.chunk_delay):
                self._gone(request)
                return
            await connection.drain()
            if not connection.open:
                self._gone(request)
                return
            last = i == len(payloads) - 1
            if last:
                self._finish(request)
            connection.write(
                b"%x\r\n%b\r\n%b" % (len(payload), payload, b"0\r\n\r\n" if last else b"")
            )


def _raise_open_files_limit(wanted: int = _OPEN_FILES) -> None:
    """Lift the soft open-files limit towards `wanted` (within the hard limit): a thousand
    concurrent calls need a thousand sockets here, and as many again in a client in-process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def serve_fake_openai(behaviour: Behaviour | None = None) -> FakeOpenAI:
    """A started fake OpenAI API on 127.0.0.1; point AsyncOpenAI's base_url at fake.base_url."""
    fake = FakeOpenAI(behaviour or Behaviour())
    fake.start()
    return fake
