"""gRPC client channels with retries, a circuit breaker, keepalive, tracing and the internal
token."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import grpc

from ponder_runtime.channel_breaker import breaker_interceptors
from ponder_runtime.deadlines import cap
from ponder_runtime.internal_auth import token_client_interceptors
from ponder_runtime.resilience import CircuitBreaker
from ponder_runtime.telemetry import Telemetry


# Retry only UNAVAILABLE (the call never reached a handler); every internal RPC is idempotent.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def call_timeout(context: grpc.aio.ServicerContext[Any, Any] | None, default: float) -> float:
    """Timeout for a downstream call: `default`, shortened to the caller's remaining deadline."""
    return cap(default, None if context is None else context.time_remaining())


class ChannelFactory:
    """Creates (and later closes) traced aio channels to other services."""

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        max_message_bytes: int = 8 * 1024 * 1024,
        internal_token: str | None = None,
        breaker_threshold: int = 3,
        breaker_reset_seconds: float = 1.0,
        slow_call_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._telemetry = telemetry
        self._breaker = (breaker_threshold, breaker_reset_seconds, slow_call_seconds)
        self._clock = clock
        # access: every call carries the internal token (internal_auth.py) when one is set.
        self._interceptors = [
            *telemetry.client_interceptors(),
            *token_client_interceptors(internal_token),
        ]
        self._options = [
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # A restarted peer is reconnected within about two seconds (gRPC's default backoff
            # grows to two minutes, so calls kept failing long after the peer was back).
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2_000),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._channels: list[grpc.aio.Channel] = []

    def channel(self, target: str) -> grpc.aio.Channel:
        """An insecure channel to `target` ("host:port") behind a circuit breaker of its own
        (channel_breaker.py), closed by `close()`."""
        threshold, reset, slow = self._breaker
        breaker = CircuitBreaker(
            failure_threshold=threshold, reset_timeout=reset, clock=self._clock
        )
        guards = breaker_interceptors(target, breaker, slow_call_seconds=slow, clock=self._clock)
        channel = grpc.aio.insecure_channel(
            target, options=self._options, interceptors=[*self._interceptors, *guards]
        )
        self._channels.append(channel)
        return channel

    async def close(self, grace: float | None = None) -> None:
        """Close every channel this factory created."""
        for channel in self._channels:
            await channel.close(grace)
        self._channels.clear()
