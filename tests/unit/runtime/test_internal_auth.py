"""The internal token between services: checked on every method but health and reflection,
sent by the channel factory, never taken from a caller through the proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_runtime import ChannelFactory, configure_telemetry, load_settings
from ponder_runtime.internal_auth import INTERNAL_TOKEN_HEADER, internal_interceptors
from ponder_runtime.proxy import ServiceProxy
from tests.unit.runtime.conftest import RuntimeTestSettings, StartServer


TOKEN = "internal-token-0123456789abcdef"
RESEARCH = "ponder.research.v1.ResearchService"


class _Research(research_grpc.ResearchServiceServicer):
    async def SearchSources(
        self,
        request: research_pb2.SearchSourcesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> research_pb2.SearchSourcesResponse:
        return research_pb2.SearchSourcesResponse(duplicates_removed=len(request.query))


class _Internal:
    """An internal service module: research, guarded by the internal token."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    @property
    def service_names(self) -> Sequence[str]:
        """ResearchService."""
        return [RESEARCH]

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """The guard under test."""
        return internal_interceptors(self._token, "research")

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer."""
        research_grpc.add_ResearchServiceServicer_to_server(_Research(), server)

    async def start(self) -> None:
        """Nothing to load."""

    async def close(self) -> None:
        """Nothing to release."""


async def _search(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> int:
    """The servicer's answer: the length of the query (proof the call reached it)."""
    reply = await research_grpc.ResearchServiceStub(channel).SearchSources(
        research_pb2.SearchSourcesRequest(query="query"), metadata=metadata, timeout=5
    )
    return int(reply.duplicates_removed)


@pytest.fixture
async def factory() -> AsyncIterator[ChannelFactory]:
    """A channel factory that sends TOKEN."""
    settings = load_settings(RuntimeTestSettings)
    channels = ChannelFactory(configure_telemetry(settings), internal_token=TOKEN)
    yield channels
    await channels.close()


async def test_every_method_needs_the_token_but_health_and_reflection(
    start_server: StartServer, factory: ChannelFactory
) -> None:
    """No token or a wrong one: UNAUTHENTICATED (never echoing the token); the factory's
    channels pass; health and reflection answer without it."""
    running = await start_server(_Internal(TOKEN))
    for metadata in ((), ((INTERNAL_TOKEN_HEADER, "wrong-token-0123456789abc"),)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _search(running.channel, metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert TOKEN not in str(caught.value.details())
    assert await _search(factory.channel(f"127.0.0.1:{running.port}")) == len("query")
    health = await health_pb2_grpc.HealthStub(running.channel).Check(
        health_pb2.HealthCheckRequest(service=RESEARCH), timeout=5
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    listed = [r async for r in stub.ServerReflectionInfo(ask(), timeout=5)]
    assert RESEARCH in {s.name for s in listed[0].list_services_response.service}


async def test_without_a_configured_token_calls_are_not_checked(
    start_server: StartServer,
) -> None:
    """A service started without PONDER_INTERNAL_TOKEN (local use) accepts any call."""
    running = await start_server(_Internal(None))
    assert await _search(running.channel) == len("query")


async def test_the_proxy_sends_its_own_token_never_the_callers(
    start_server: StartServer, factory: ChannelFactory, module_of
) -> None:
    """Through a forwarding server whose channel carries the token, a caller's own (wrong)
    token is dropped and the call passes; through one whose channel has no token, the
    internal service refuses even a caller that sends the right one."""
    internal = await start_server(_Internal(TOKEN))
    target = f"127.0.0.1:{internal.port}"
    settings = load_settings(RuntimeTestSettings)
    bare = ChannelFactory(configure_telemetry(settings))
    try:
        for channel, caller_token, expected in (
            (factory.channel(target), "wrong-token-0123456789abc", None),
            (bare.channel(target), TOKEN, grpc.StatusCode.UNAUTHENTICATED),
        ):
            proxy = ServiceProxy({RESEARCH: channel})
            front = await start_server(
                module_of([RESEARCH], lambda server, p=proxy: server.add_generic_rpc_handlers([p]))
            )
            metadata = ((INTERNAL_TOKEN_HEADER, caller_token),)
            if expected is None:
                assert await _search(front.channel, metadata) == len("query")
            else:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await _search(front.channel, metadata)
                assert caught.value.code() == expected
    finally:
        await bare.close()
