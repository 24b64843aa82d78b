"""The reflection service as a ServiceModule: picks the provider, serves ReflectionService."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder_reflection.offline import OfflineProvider
from ponder_reflection.openai_provider import OpenAIProvider, classify
from ponder_reflection.provider import ReflectionProvider
from ponder_reflection.servicer import ReflectionServicer
from ponder_reflection.settings import ReflectionSettings
from ponder_runtime import Telemetry
from ponder_runtime.internal_auth import internal_interceptors
from ponder_runtime.resilience import (
    CircuitBreaker,
    ConcurrencyLimit,
    ResilientCaller,
    RetryBudget,
    RetryPolicy,
)


logger = logging.getLogger(__name__)


def build_provider(
    settings: ReflectionSettings, telemetry: Telemetry | None = None
) -> ReflectionProvider:
    """The OpenAI-compatible provider when configured (or forced), else the offline one."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if settings.provider == "offline" or (settings.provider == "auto" and not key):
        return OfflineProvider()
    caller = ResilientCaller(
        f"model endpoint {settings.openai_base_url or 'api.openai.com'}",
        classify,
        limit=ConcurrencyLimit(settings.max_concurrency),
        breaker=CircuitBreaker(
            failure_threshold=settings.breaker_failures,
            reset_timeout=settings.breaker_reset_seconds,
        ),
        policy=RetryPolicy(
            max_attempts=settings.max_attempts,
            base_delay=settings.retry_base_seconds,
            max_delay=settings.retry_max_seconds,
            min_attempt_seconds=settings.min_attempt_seconds,
        ),
        budget=RetryBudget(
            ratio=settings.retry_budget_ratio, min_retries=settings.retry_budget_min_retries
        ),
        call_timeout=settings.call_timeout_seconds,
        meter=telemetry.meter("ponder_reflection") if telemetry else None,
    )
    http_client = DefaultAsyncHttpxClient()  # openai's defaults (limits, redirects)
    if telemetry is not None:  # each HTTP request to the model: a client span and metrics
        HTTPX2ClientInstrumentor.instrument_client(
            http_client,  # type: ignore[arg-type]  # an httpx2 client: its annotation says httpx
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
    client = AsyncOpenAI(
        api_key=key or "unused",  # some local servers take any key
        base_url=settings.openai_base_url,
        max_retries=0,  # retries are ours: backoff, Retry-After, breaker, deadline
        timeout=settings.call_timeout_seconds,
        http_client=http_client,
    )
    return OpenAIProvider(
        client,
        caller,
        model=settings.model,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        tracer=telemetry.tracer("ponder_reflection") if telemetry else None,
    )


class ReflectionModule:
    """Serves ReflectionService with the configured provider."""

    def __init__(self, settings: ReflectionSettings, telemetry: Telemetry) -> None:
        self._settings = settings
        self.provider = build_provider(settings, telemetry)
        logger.info(
            "reflection provider",
            extra={"provider": self.provider.name, "model": self.provider.model},
        )
        self._servicer = ReflectionServicer(
            self.provider,
            default_max_iterations=settings.default_max_iterations,
            default_score_threshold=settings.default_score_threshold,
            default_deadline=settings.default_deadline_seconds,
            prices=settings.price_table(),
        )

    @property
    def service_names(self) -> Sequence[str]:
        """ReflectionService's full name."""
        return [reflection_pb2.DESCRIPTOR.services_by_name["ReflectionService"].full_name]

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """access: every method but health and reflection needs the internal token."""
        return internal_interceptors(self._settings.internal_token_value, "reflection")

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer."""
        reflection_grpc.add_ReflectionServiceServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """Nothing to load: the first model call opens the connection."""

    async def close(self) -> None:
        """Close the model client."""
        if isinstance(self.provider, OpenAIProvider):
            await self.provider.close()
