"""The reflection service as a ServiceModule."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder_reflection.offline_provider import OfflineProvider
from ponder_reflection.servicer import ReflectionServicer
from ponder_reflection.settings import ReflectionSettings
from ponder_runtime import Telemetry


class ReflectionModule:
    """Serves ReflectionService with the offline provider (OpenAI-compatible: issue 5)."""

    def __init__(self, settings: ReflectionSettings, telemetry: Telemetry) -> None:
        self._servicer = ReflectionServicer(
            OfflineProvider(),
            default_max_iterations=settings.default_max_iterations,
            default_score_threshold=settings.default_score_threshold,
        )

    @property
    def service_names(self) -> Sequence[str]:
        """ReflectionService's full name."""
        return [reflection_pb2.DESCRIPTOR.services_by_name["ReflectionService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer."""
        reflection_grpc.add_ReflectionServiceServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """The offline provider needs nothing to start."""

    async def close(self) -> None:
        """Nothing to release."""
