"""Settings of the gateway."""

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
    research_timeout_seconds: float = Field(
        30.0, gt=0, le=600, validation_alias="PONDER_GATEWAY_RESEARCH_TIMEOUT_SECONDS"
    )
    rank_timeout_seconds: float = Field(
        10.0, gt=0, le=600, validation_alias="PONDER_GATEWAY_RANK_TIMEOUT_SECONDS"
    )
    reflection_timeout_seconds: float = Field(
        300.0, gt=0, le=3600, validation_alias="PONDER_GATEWAY_REFLECTION_TIMEOUT_SECONDS"
    )
