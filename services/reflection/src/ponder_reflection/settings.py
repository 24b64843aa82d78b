"""Settings of the reflection service."""

import json
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from ponder_reflection.budget import DEFAULT_PRICES, Price, PriceTable
from ponder_runtime import ServiceSettings


class ModelPrice(BaseModel):
    """One model's price: USD per million input (prompt) and output (completion) tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, le=10_000)
    output: float = Field(ge=0, le=10_000)


def _read_prices(text: str, where: str) -> dict[str, ModelPrice]:
    """A JSON object {model: {"input": usd, "output": usd}}; ValueError naming `where`."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("must be a JSON object of models")
        return {str(model): ModelPrice.model_validate(price) for model, price in raw.items()}
    except (ValueError, ValidationError) as exc:
        raise ValueError(f"{where}: {str(exc).splitlines()[0]}") from None


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
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='Model prices in USD per million tokens, as JSON: {"my-model": {"input": '
        '0.5, "output": 1.5}}; over the built-in table (budget.DEFAULT_PRICES) and the file.',
    )
    prices_file: Path | None = Field(
        None,
        description="A JSON file of model prices in the form of PONDER_REFLECTION_PRICES.",
    )
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

    @field_validator("prices_file")
    @classmethod
    def _prices_file_readable(cls, path: Path | None) -> Path | None:
        """The file must exist and hold valid prices (checked at start)."""
        if path is not None:
            _read_prices(path.read_text(), str(path))
        return path

    def price_table(self) -> PriceTable:
        """The built-in prices, then the file's, then PONDER_REFLECTION_PRICES'."""
        table: dict[str, Price] = dict(DEFAULT_PRICES)
        given: dict[str, ModelPrice] = {}
        if self.prices_file is not None:
            given.update(_read_prices(self.prices_file.read_text(), str(self.prices_file)))
        given.update(self.prices)
        table.update({model: Price(p.input, p.output) for model, p in given.items()})
        return PriceTable(table)
