"""The embedding service as a ServiceModule: loads the model at start, then serves."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_embedding.model import EmbeddingModel
from ponder_embedding.servicer import EmbeddingServicer
from ponder_embedding.settings import EmbeddingSettings
from ponder_runtime import Telemetry


class EmbeddingModule:
    """Serves EmbeddingService; NOT_SERVING until the model is loaded."""

    def __init__(self, settings: EmbeddingSettings, telemetry: Telemetry) -> None:
        self._settings = settings
        self._servicer = EmbeddingServicer()

    @property
    def service_names(self) -> Sequence[str]:
        """EmbeddingService's full name."""
        return [embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer."""
        embedding_grpc.add_EmbeddingServiceServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """Load the model (seconds: torch import plus weights)."""
        self._servicer.model = await EmbeddingModel.load(
            self._settings.model, self._settings.device, batch_size=self._settings.max_batch_size
        )

    async def close(self) -> None:
        """Stop the model's worker thread."""
        if self._servicer.model is not None:
            self._servicer.model.close()
