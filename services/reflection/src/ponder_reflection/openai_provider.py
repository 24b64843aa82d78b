"""A reflection provider on any OpenAI-compatible chat completions endpoint (OpenAI, vLLM,
Ollama, llama.cpp servers), through the `openai` package's AsyncOpenAI.

Every call goes through a ResilientCaller: a concurrency limit, retries with backoff on 429
and 5xx (honouring Retry-After), a circuit breaker, per-call timeouts from the request's
deadline. Critiques are JSON validated against a schema, with one repair attempt.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from pydantic import BaseModel, Field, ValidationError

from ponder_reflection.budget import check_extra_call, estimate_tokens
from ponder_reflection.provider import Critiqued, DeltaSink, Documents, Drafted
from ponder_reflection.types import Critique, SourceDocument, StepKind, TokenUsage
from ponder_runtime import UnavailableError
from ponder_runtime.attributes import (
    ERROR_TYPE,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    LLM_ATTEMPTS,
)
from ponder_runtime.deadlines import current_deadline
from ponder_runtime.resilience import Failure, FailureKind, ResilientCaller


WRITER = (
    "You are a careful research writer. Using ONLY the numbered sources below, write a concise "
    "answer to the topic in 3 to 6 sentences. End every sentence with one or more citations "
    "such as [1] or [2][3], using only the source numbers listed. Never invent facts or "
    "sources."
)
REVIEWER = (
    "You are a strict reviewer of cited research summaries. Assess the text against the topic "
    "and the numbered sources. Reply with one JSON object only, exactly of the form "
    '{"score": <number 0-10>, "issues": [<strings>], "suggestions": [<strings>]}. '
    "Lower the score for claims no cited source supports, citations to numbers that are not "
    "listed, parts of the topic left uncovered, redundancy and vagueness. 10 means nothing to "
    "improve; then issues and suggestions are empty."
)
REVISER = WRITER + " Rewrite the text so that it fixes every issue the review lists."


class CritiqueReply(BaseModel):
    """The JSON a critique must be."""

    score: float = Field(ge=0, le=10)
    issues: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


def _where(doc: SourceDocument) -> str:
    """Which part of its document a passage source is: " (section: ...)" or " (page n)"."""
    if doc.passage is None:
        return ""
    if doc.passage.heading:
        return f" (section: {doc.passage.heading})"
    return f" (page {doc.passage.page})" if doc.passage.page else ""


def sources_block(documents: Documents) -> str:
    """The numbered sources as the prompts show them."""
    return (
        "\n\n".join(
            f"[{n}] Title: {doc.title}{_where(doc)}\n{doc.text}"
            for n, doc in enumerate(documents, start=1)
        )
        or "(no sources were supplied)"
    )


# Tokens a chat request adds around each message (role, separators) and to prime the reply,
# as OpenAI's cookbook counts them for its chat models.
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REQUEST = 3


def _messages(system: str, topic: str, documents: Documents, *parts: str) -> list[dict[str, str]]:
    """The system prompt, then one user message: the topic, the sources and `parts`, each
    after a blank line."""
    user = "\n\n".join([f"Topic: {topic}", f"Sources:\n{sources_block(documents)}", *parts])
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def draft_messages(topic: str, documents: Documents) -> list[dict[str, str]]:
    """The chat messages of a draft call."""
    return _messages(WRITER, topic, documents)


def critique_messages(topic: str, documents: Documents, text: str) -> list[dict[str, str]]:
    """The chat messages of a critique call."""
    return _messages(REVIEWER, topic, documents, f"Text to review:\n{text}")


def refine_messages(
    topic: str, documents: Documents, text: str, critique: Critique
) -> list[dict[str, str]]:
    """The chat messages of a refine call."""
    review = "\n".join(
        [
            f"Score: {critique.score}/10",
            "Issues:",
            *(f"- {i}" for i in critique.issues),
            "Suggestions:",
            *(f"- {s}" for s in critique.suggestions),
        ]
    )
    return _messages(REVISER, topic, documents, f"Text:\n{text}", f"Review:\n{review}")


def prompt_tokens(messages: Sequence[dict[str, str]]) -> int:
    """An over-estimate of a chat request's prompt tokens (budget.estimate_tokens)."""
    return TOKENS_PER_REQUEST + sum(
        TOKENS_PER_MESSAGE + estimate_tokens(message["content"]) for message in messages
    )


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())


def classify(exc: Exception) -> Failure | None:
    """How an `openai` exception counts for retries and the circuit breaker."""
    if isinstance(exc, openai.RateLimitError):
        return Failure(
            FailureKind.RATE_LIMITED, f"HTTP 429: {exc.message}", _retry_after(exc.response)
        )
    if isinstance(exc, openai.APITimeoutError):
        return Failure(FailureKind.UNAVAILABLE, "the model call timed out", timed_out=True)
    if isinstance(exc, openai.APIConnectionError):
        return Failure(FailureKind.UNAVAILABLE, f"cannot reach the model endpoint: {exc.message}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = f"HTTP {status}: {exc.message}"
        if status >= 500 or status in (408, 409):
            return Failure(FailureKind.UNAVAILABLE, message, _retry_after(exc.response))
        return Failure(FailureKind.REJECTED, message)
    return None


def _usage(usage: Any) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    return TokenUsage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))


class OpenAIProvider:
    """Draft, critique and refine with an OpenAI-compatible chat model."""

    name = "openai"
    offline = False

    def __init__(
        self,
        client: AsyncOpenAI,
        caller: ResilientCaller,
        *,
        model: str,
        temperature: float,
        max_tokens: int,
        tracer: Tracer | None = None,
    ) -> None:
        self._client = client
        self._caller = caller
        self.model = model
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._tracer = tracer or trace.NoOpTracer()

    @contextlib.contextmanager
    def _span(self) -> Iterator[tuple[Span, list[int]]]:
        """One span per model call (all its attempts), named and tagged as OpenTelemetry's
        GenAI conventions say; yields the span and a one-item attempt counter."""
        attempts = [0]
        with self._tracer.start_as_current_span(
            f"chat {self.model}",
            kind=SpanKind.CLIENT,
            attributes={
                GEN_AI_OPERATION_NAME: "chat",
                GEN_AI_PROVIDER_NAME: "openai",
                GEN_AI_REQUEST_MODEL: self.model,
                GEN_AI_REQUEST_TEMPERATURE: self._temperature,
                GEN_AI_REQUEST_MAX_TOKENS: self._max_tokens,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span, attempts
            except Exception as exc:
                span.set_attribute(ERROR_TYPE, type(exc).__name__)
                span.set_status(StatusCode.ERROR, str(exc)[:200])
                raise
            finally:
                span.set_attribute(LLM_ATTEMPTS, attempts[0])

    @staticmethod
    def _record(span: Span, model: str | None, usage: TokenUsage) -> None:
        span.set_attributes(
            {
                GEN_AI_RESPONSE_MODEL: model or "",
                GEN_AI_USAGE_INPUT_TOKENS: usage.prompt_tokens,
                GEN_AI_USAGE_OUTPUT_TOKENS: usage.completion_tokens,
            }
        )

    async def _complete(
        self, messages: list[dict[str, str]], *, json_mode: bool = False
    ) -> tuple[str, TokenUsage]:
        async def attempt(timeout: float) -> tuple[str, TokenUsage]:
            counter[0] += 1
            extra: dict[str, Any] = (
                {"response_format": {"type": "json_object"}} if json_mode else {}
            )
            reply = await self._client.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                temperature=self._temperature,
                max_tokens=self._max_tokens,
                timeout=timeout,
                **extra,
            )
            usage = _usage(reply.usage)
            self._record(span, reply.model, usage)
            return reply.choices[0].message.content or "", usage

        with self._span() as (span, counter):
            return await self._caller.call(attempt, deadline=current_deadline())

    async def _stream(
        self, messages: list[dict[str, str]], on_delta: DeltaSink
    ) -> tuple[str, TokenUsage]:
        async def attempt(timeout: float) -> tuple[str, TokenUsage]:
            counter[0] += 1
            stream = await self._client.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                temperature=self._temperature,
                max_tokens=self._max_tokens,
                timeout=timeout,
                stream=True,
                stream_options={"include_usage": True},
            )
            pieces: list[str] = []
            usage = TokenUsage()
            model = ""
            try:
                async for chunk in stream:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        if choice.delta.content:
                            pieces.append(choice.delta.content)
                            on_delta(choice.delta.content)
            except Exception as exc:
                if pieces:  # text already went to the client: retrying would repeat it
                    raise UnavailableError(f"the model's stream broke off: {exc}") from exc
                raise
            finally:
                await stream.close()
            self._record(span, model, usage)
            return "".join(pieces), usage

        with self._span() as (span, counter):
            return await self._caller.call(attempt, deadline=current_deadline())

    async def _write(self, messages: list[dict[str, str]], on_delta: DeltaSink | None) -> Drafted:
        text, usage = (
            await self._stream(messages, on_delta) if on_delta else await self._complete(messages)
        )
        return Drafted(text.strip(), usage)

    def estimate(
        self,
        kind: StepKind,
        topic: str,
        documents: Documents,
        text: str = "",
        critique: Critique | None = None,
    ) -> TokenUsage:
        """The call's prompt (over-)counted, and its completion at `max_tokens`."""
        if kind == StepKind.DRAFT:
            messages = draft_messages(topic, documents)
        elif kind == StepKind.CRITIQUE or critique is None:
            messages = critique_messages(topic, documents, text)
        else:
            messages = refine_messages(topic, documents, text, critique)
        return TokenUsage(prompt_tokens(messages), self._max_tokens)

    async def draft(
        self, topic: str, documents: Documents, on_delta: DeltaSink | None = None
    ) -> Drafted:
        """A first cited text."""
        return await self._write(draft_messages(topic, documents), on_delta)

    async def critique(self, topic: str, documents: Documents, text: str) -> Critiqued:
        """A JSON critique, validated; one repair attempt when the model's JSON is malformed
        (if the reflection's budget allows it: budget.BudgetExhaustedError otherwise)."""
        messages = critique_messages(topic, documents, text)
        content, usage = await self._complete(messages, json_mode=True)
        try:
            reply = CritiqueReply.model_validate(json.loads(content))
            warnings: tuple[str, ...] = ()
        except (json.JSONDecodeError, ValidationError) as exc:
            repair = [
                *messages,
                {"role": "assistant", "content": content},
                {
                    "role": "user",
                    "content": f"That reply is not valid: {str(exc)[:300]}. Reply again with "
                    "only the JSON object of the required form.",
                },
            ]
            estimate = TokenUsage(prompt_tokens(repair), self._max_tokens)
            check_extra_call(estimate, "critique repair", usage)
            content, more = await self._complete(repair, json_mode=True)
            usage = usage + more
            try:
                reply = CritiqueReply.model_validate(json.loads(content))
            except (json.JSONDecodeError, ValidationError) as again:
                raise UnavailableError(
                    f"the model returned an invalid critique twice: {str(again)[:200]}"
                ) from again
            warnings = ("The model's critique was not valid JSON; one repair attempt fixed it",)
        critique = Critique(round(reply.score, 1), tuple(reply.issues), tuple(reply.suggestions))
        return Critiqued(critique, usage, warnings)

    async def refine(
        self,
        topic: str,
        documents: Documents,
        text: str,
        critique: Critique,
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """A rewrite that addresses the critique."""
        messages = refine_messages(topic, documents, text, critique)
        return await self._write(messages, on_delta)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
