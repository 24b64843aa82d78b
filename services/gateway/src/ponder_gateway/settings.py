"""Settings of the gateway."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ponder_runtime import ServiceSettings


class GatewaySettings(ServiceSettings):
    """PONDER_GATEWAY_* settings, the downstream addresses and per-step timeouts."""

    service_name: ClassVar[str] = "gateway"

    port: int = Field(50051, ge=0, le=65535, validation_alias="PONDER_GATEWAY_PORT")
    research_addr: str = Field("127.0.0.1:50052", validation_alias="PONDER_RESEARCH_ADDR")
    reflection_addr: str = Field("127.0.0.1:50053", validation_alias="PONDER_REFLECTION_ADDR")
    embedding_addr: str = Field("127.0.0.1:50054", validation_alias="PONDER_EMBEDDING_ADDR")
    expose_internal_services: bool = Field(
        True,
        validation_alias="PONDER_GATEWAY_EXPOSE_INTERNAL_SERVICES",
        description="Forward research, embedding and reflection on the gateway's port "
        "(debugging with one address); turn off where only WorkflowService may be public.",
    )
    store_path: Path = Field(
        Path("var/data/gateway-workflows.sqlite3"),
        validation_alias="PONDER_GATEWAY_STORE_PATH",
        description="SQLite file of workflow records.",
    )
    cache_similarity_threshold: float = Field(
        0.95, gt=0, le=1, validation_alias="PONDER_GATEWAY_CACHE_SIMILARITY_THRESHOLD"
    )
    cache_ttl_seconds: float = Field(
        7 * 24 * 3600, gt=0, validation_alias="PONDER_GATEWAY_CACHE_TTL_SECONDS"
    )
    research_timeout_seconds: float = Field(
        30.0, gt=0, le=600, validation_alias="PONDER_GATEWAY_RESEARCH_TIMEOUT_SECONDS"
    )
    rank_timeout_seconds: float = Field(
        10.0, gt=0, le=600, validation_alias="PONDER_GATEWAY_RANK_TIMEOUT_SECONDS"
    )
    reflection_timeout_seconds: float = Field(
        300.0, gt=0, le=3600, validation_alias="PONDER_GATEWAY_REFLECTION_TIMEOUT_SECONDS"
    )
