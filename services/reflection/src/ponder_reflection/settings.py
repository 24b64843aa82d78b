"""Settings of the reflection service."""

from typing import ClassVar

from pydantic import Field

from ponder_runtime import ServiceSettings


class ReflectionSettings(ServiceSettings):
    """PONDER_REFLECTION_* settings (plus the shared PONDER_* ones)."""

    service_name: ClassVar[str] = "reflection"

    port: int = Field(50053, ge=0, le=65535, validation_alias="PONDER_REFLECTION_PORT")
    default_max_iterations: int = Field(
        2, ge=1, le=5, validation_alias="PONDER_REFLECTION_DEFAULT_MAX_ITERATIONS"
    )
    default_score_threshold: float = Field(
        8.0, ge=0, le=10, validation_alias="PONDER_REFLECTION_DEFAULT_SCORE_THRESHOLD"
    )
