"""Settings of the reflection service."""

from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ponder_runtime import ServiceSettings


class ReflectionSettings(ServiceSettings):
    """PONDER_REFLECTION_* settings and the OpenAI client's OPENAI_API_KEY / OPENAI_BASE_URL."""

    model_config = SettingsConfigDict(env_prefix="PONDER_REFLECTION_")

    service_name: ClassVar[str] = "reflection"

    port: int = Field(50053, ge=0, le=65535)
    default_max_iterations: int = Field(2, ge=1, le=5)
    default_score_threshold: float = Field(8.0, ge=0, le=10)
    provider: Literal["auto", "openai", "offline"] = Field(
        "auto",
        description="auto: the OpenAI-compatible endpoint when OPENAI_API_KEY is set, else the "
        "offline extractive provider.",
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    model: str = Field("gpt-4o-mini")
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(800, ge=16, le=32768)
    max_concurrency: int = Field(
        8,
        ge=1,
        le=10_000,
        description="Upstream model calls at once; more wait in line (within their deadline).",
    )
    call_timeout_seconds: float = Field(60.0, gt=0, le=600)
    max_attempts: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Safety net on attempts per model call; retries normally stop when the "
        "caller's deadline leaves too little time for another attempt.",
    )
    min_attempt_seconds: float = Field(
        0.5,
        ge=0,
        le=600,
        description="No retry unless the deadline leaves this long for the attempt after "
        "the backoff.",
    )
    retry_budget_ratio: float = Field(
        0.5,
        ge=0,
        le=10,
        description="Retries per process at most this fraction of the model calls of the "
        "last 10 s (plus PONDER_REFLECTION_RETRY_BUDGET_MIN_RETRIES).",
    )
    retry_budget_min_retries: int = Field(10, ge=0, le=1_000_000)
    retry_base_seconds: float = Field(0.5, gt=0, le=60)
    retry_max_seconds: float = Field(20.0, gt=0, le=600)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_reset_seconds: float = Field(15.0, gt=0, le=3600)
    default_deadline_seconds: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="Time a reflection gets when its caller set no gRPC deadline.",
    )
