"""A local HTTP server that speaks OpenAI's Chat Completions API, for tests and benchmarks:
the real `openai.AsyncOpenAI(base_url=fake.base_url, api_key=...)` talks to it on 127.0.0.1.

It answers `POST /v1/chat/completions` (plain JSON or, with `"stream": true`, server-sent
events) and `GET /v1/models`. Replies are deterministic and derived from the request (see
fake_replies): with `response_format={"type": "json_object"}` a critique `{"score", "issues",
"suggestions"}`, otherwise a short draft whose sentences cite the `[n]` documents listed in the
user message.

A `Behaviour` makes it slow, failing, rate limited, hanging or malformed; the handle records
every request, the peak concurrency and the clients that went away before their reply. It is
an ASGI app served by uvicorn from a daemon thread (fake_serve).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ponder_devstack import fake_knobs
from ponder_devstack.fake_replies import (
    count_words,
    critique_json,
    draft_text,
    is_critique,
    is_equivalence_question,
    prompt_tokens,
    split_deltas,
)
from ponder_devstack.fake_serve import Call, Receive, Scope, Send, Served


_log = logging.getLogger(__name__)

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
_MALFORMED_CRITIQUE = "Score: nine out of ten. The draft is good but could cite more sources."


@dataclass
class Behaviour(fake_knobs.Behaviour):
    """The shared knobs (a 429 says Retry-After: 0.1 by default), plus the model's content."""

    retry_after: str = "0.1"  # the 429's Retry-After header ("" sends none)
    chunk_delay: float = 0.0  # seconds between the chunks of a streamed reply
    malformed_json_next: int = 0  # the next N critique calls reply with non-JSON content
    critique_scores: list[float] = field(default_factory=list)  # consumed one per critique
    default_score: float = 9.0  # the critique score once `critique_scores` is exhausted
    cite_missing: bool = False  # drafts add one sentence citing [99], a document not supplied
    same_question: bool = True  # the answer to equivalence questions (the cache's LLM verifier)
    models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o")  # what GET /v1/models lists

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
    """One call as the fake handles it: the HTTP call, its route and its JSON body."""

    call: Call
    route: str
    json: dict[str, Any] = field(default_factory=dict)
    invalid: str = ""  # why the body is unusable, if it is
    finished: bool = False  # no longer counted in flight


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
    _served: Served | None = field(default=None, init=False, repr=False)
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
        self._served = Served(self, "fake-openai", self.host)
        self.port = self._served.port

    def close(self) -> None:
        """Stop serving: close every connection (hanging calls see a disconnect)."""
        if self._served is not None:
            self._served.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: one call, recorded and counted in flight while it runs."""
        if scope["type"] != "http":
            return
        call = Call(scope, receive, send)
        request = _Request(call, call.path.rstrip("/"))
        raw = await call.read_body()
        if raw:
            try:
                parsed = json.loads(raw)
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
            _log.exception("fake OpenAI failed on %s %s", call.method, request.route)
            await self._send(request, 500, _error_body(500, "fake server error"))
        finally:
            self._finish(request)
            call.stop_watching()

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

    async def _send(
        self, request: _Request, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Answer with a complete response, or record a disconnect if the client left."""
        all_headers = {**self._request_id(), **(headers or {})}
        if request.call.gone.is_set():
            self._gone(request)
            return
        self._finish(request)
        self.calls_by_status[status] += 1
        await request.call.respond(status, body, headers=all_headers)

    def _rejection(self, request: _Request) -> tuple[int, str] | None:
        """An error for an unknown path, a wrong method or a bad body, or None."""
        route, method = request.route, request.call.method
        expected = {"/v1/chat/completions": "POST", "/v1/models": "GET"}.get(route)
        if expected is None and not route.startswith("/v1/models/"):
            return 404, f"Unknown request URL: {method} {route}."
        if method != (expected or "GET"):
            return 405, f"Method {method} is not allowed on {route}."
        if request.invalid:
            return 400, request.invalid
        return None

    async def _survives_knobs(self, request: _Request, behaviour: Behaviour) -> bool:
        """Apply hang, latency and the failure knobs; False when the call is over."""
        call = request.call
        if behaviour.hang:
            await call.gone.wait()
            self._gone(request)
            return False
        if await call.wait_gone(behaviour.latency):
            self._gone(request)
            return False
        failing = behaviour.failing_status()
        if failing is not None:
            message = f"The fake server answers {failing} (as configured)."
            await self._send(request, failing, _error_body(failing, message))
            return False
        if behaviour.take_rate_limit():
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            message = "Rate limit reached for requests (fake). Please try again later."
            await self._send(request, 429, _error_body(429, message), headers)
            return False
        return True

    async def _respond(self, request: _Request) -> None:
        """Route the request, apply the behaviour and answer."""
        rejection = self._rejection(request)
        if rejection is not None:
            await self._send(request, rejection[0], _error_body(*rejection))
            return
        behaviour = self.behaviour
        if not await self._survives_knobs(request, behaviour):
            return
        route, body = request.route, request.json
        if route == "/v1/models":
            await self._send(request, 200, _dumps(self._model_list(behaviour)))
        elif route.startswith("/v1/models/"):
            await self._model(request, route.removeprefix("/v1/models/"), behaviour)
        elif body.get("stream") is True:
            await self._stream(request, behaviour)
        else:
            await self._send(request, 200, _dumps(self._completion(body, behaviour)))

    async def _model(self, request: _Request, name: str, behaviour: Behaviour) -> None:
        """Answer GET /v1/models/<name>."""
        for model in self._model_list(behaviour)["data"]:
            if model["id"] == name:
                await self._send(request, 200, _dumps(model))
                return
        message = f"The model `{name}` does not exist or you do not have access to it."
        await self._send(request, 404, _error_body(404, message))

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

    def _request_id(self) -> dict[str, str]:
        """The x-request-id header of a new response."""
        self._sequence += 1
        return {"x-request-id": f"req_fake{self._sequence:08d}"}

    def _reply(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        """The fields of a new ChatCompletion (`kind` "chat.completion") or of a stream's chunks
        ("chat.completion.chunk")."""
        self._sequence += 1
        return {
            "id": f"chatcmpl-fake{self._sequence:08d}",
            "object": kind,
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "system_fingerprint": "fp_fake",
        }

    def _completion(self, body: dict[str, Any], behaviour: Behaviour) -> dict[str, Any]:
        """A non-streaming ChatCompletion for the request."""
        content = self._content(body, behaviour)
        message = {"role": "assistant", "content": content, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return {
            **self._reply(body, "chat.completion"),
            "choices": [choice],
            "usage": _usage(body, content),
        }

    async def _stream(self, request: _Request, behaviour: Behaviour) -> None:
        """Answer with server-sent chat.completion.chunk events, then [DONE]."""
        body, call = request.json, request.call
        content = self._content(body, behaviour)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base = self._reply(body, "chat.completion.chunk")
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
            events.append({**base, "choices": [], "usage": _usage(body, content)})

        headers = {**self._request_id(), "Cache-Control": "no-cache"}
        if call.gone.is_set():
            self._gone(request)
            return
        self.calls_by_status[200] += 1
        await call.start(200, "text/event-stream; charset=utf-8", headers)
        payloads = [b"data: " + _dumps(event) + b"\n\n" for event in events]
        payloads.append(b"data: [DONE]\n\n")
        for i, payload in enumerate(payloads):
            if i and await call.wait_gone(behaviour.chunk_delay):
                self._gone(request)
                return
            last = i == len(payloads) - 1
            if last:
                self._finish(request)
            await call.write(payload, more=not last)


def _error_body(status: int, message: str) -> bytes:
    """An OpenAI-style error body: {"error": {message, type, param, code}}."""
    error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error")
    code = "rate_limit_exceeded" if status == 429 else None
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return json.dumps({"error": error}).encode()


def _usage(body: dict[str, Any], content: str) -> dict[str, int]:
    """The usage of a reply with `content` to the request `body` (tokens are words here)."""
    prompt, completion = prompt_tokens(body), count_words(content)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


def serve_fake_openai(behaviour: Behaviour | None = None) -> FakeOpenAI:
    """A started fake OpenAI API on 127.0.0.1; point AsyncOpenAI's base_url at fake.base_url."""
    fake = FakeOpenAI(behaviour or Behaviour())
    fake.start()
    return fake
