"""Typed settings from the environment, validated at start with errors that name the variable."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


ENV_PREFIX = "PONDER_"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


class ServiceSettings(BaseSettings):
    """Settings every Ponder service shares. Subclasses add a `port` and their own fields.

    Our variables are `PONDER_*`: a service's own are `PONDER_<SERVICE>_<FIELD>` (its settings
    class sets `env_prefix`; `port` and `metrics_port` are its own too), the shared ones below
    keep one name for all services (`PONDER_LOG_LEVEL`, ...) through their alias, and so do a
    service's fields named after something else (`OPENAI_API_KEY`, `PONDER_RESEARCH_ADDR`).
    OpenTelemetry's own `OTEL_*` variables are read here too, so that nothing else in the code
    touches the environment.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: ClassVar[str] = "ponder"

    host: str = Field(
        "127.0.0.1",
        description="Interface to listen on ('0.0.0.0' in containers).",
        validation_alias="PONDER_HOST",
    )
    port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="PONDER_LOG_LEVEL"
    )
    log_format: Literal["json", "text"] = Field("json", validation_alias="PONDER_LOG_FORMAT")
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "uvloop",
        description="The event loop: uvloop (the default; what uvicorn picks too) makes socket "
        "I/O and callbacks cheaper (~9% more REST answers per second, BENCHMARKS.md); asyncio's "
        "own loop is the fallback. grpc.aio and the REST facade run on either.",
        validation_alias="PONDER_EVENT_LOOP",
    )
    shutdown_grace_seconds: float = Field(
        10.0,
        ge=0,
        le=300,
        description="Time in-flight RPCs get to finish after SIGTERM.",
        validation_alias="PONDER_SHUTDOWN_GRACE_SECONDS",
    )
    server_reflection: bool = Field(
        True,
        description="Serve gRPC server reflection (grpcurl).",
        validation_alias="PONDER_SERVER_REFLECTION",
    )
    max_message_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, validation_alias="PONDER_MAX_MESSAGE_BYTES"
    )
    max_metadata_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="gRPC request metadata (headers) larger than this is refused with "
        "RESOURCE_EXHAUSTED.",
        validation_alias="PONDER_MAX_METADATA_BYTES",
    )
    grpc_handshake_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="A gRPC connection that has not finished its HTTP/2 handshake by then is "
        "closed (slow or idle clients).",
        validation_alias="PONDER_GRPC_HANDSHAKE_TIMEOUT_SECONDS",
    )
    grpc_max_connection_idle_seconds: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="A gRPC connection with no RPC for this long is closed (GOAWAY).",
        validation_alias="PONDER_GRPC_MAX_CONNECTION_IDLE_SECONDS",
    )
    metrics_port: int = Field(
        -1,
        ge=-1,
        le=65535,
        description="Port of the Prometheus text endpoint (GET /metrics) on `host`: -1 turns "
        "it off, 0 picks a free one. Each service reads its own PONDER_<SERVICE>_METRICS_PORT.",
    )
    internal_token: SecretStr | None = Field(
        None,
        min_length=16,
        validation_alias="PONDER_INTERNAL_TOKEN",
        description="Shared token of service-to-service calls (from a Secret): sent by the "
        "gateway and research on every internal call, required by research, reflection and "
        "embedding on every method but health and reflection (internal_auth.py). Unset: "
        "internal calls are not authenticated (local use only).",
    )
    otel_service_name: str | None = Field(None, validation_alias="OTEL_SERVICE_NAME")
    otel_exporter_otlp_endpoint: str | None = Field(
        None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    otel_exporter_otlp_metrics_endpoint: str | None = Field(
        None, validation_alias="OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
    )
    otel_traces_exporter: str = Field("otlp", validation_alias="OTEL_TRACES_EXPORTER")
    otel_traces_sampler: str | None = Field(None, validation_alias="OTEL_TRACES_SAMPLER")
    otel_metrics_exporter: str = Field("otlp", validation_alias="OTEL_METRICS_EXPORTER")
    otel_sdk_disabled: bool = Field(False, validation_alias="OTEL_SDK_DISABLED")

    @property
    def internal_token_value(self) -> str | None:
        """The internal token in clear (for the channel factory and the guard), or None."""
        return self.internal_token.get_secret_value() if self.internal_token else None

    @property
    def address(self) -> str:
        """host:port this service listens on."""
        return f"{self.host}:{self.port}"

    @property
    def otlp_export_enabled(self) -> bool:
        """Whether spans should be exported over OTLP."""
        endpoint = self.otel_exporter_otlp_traces_endpoint or self.otel_exporter_otlp_endpoint
        return bool(endpoint) and self.otel_traces_exporter == "otlp" and not self.otel_sdk_disabled

    @property
    def otlp_metrics_export_enabled(self) -> bool:
        """Whether metrics should be exported over OTLP (the Prometheus endpoint is separate)."""
        endpoint = self.otel_exporter_otlp_metrics_endpoint or self.otel_exporter_otlp_endpoint
        return (
            bool(endpoint) and self.otel_metrics_exporter == "otlp" and not self.otel_sdk_disabled
        )


S = TypeVar("S", bound=ServiceSettings)


def env_name(settings_cls: type[ServiceSettings], field: str) -> str:
    """The environment variable that sets `field` of `settings_cls`."""
    info = settings_cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    if field in _aliases(settings_cls).values():  # pydantic reports aliased fields by alias
        return field
    return f"{settings_cls.model_config.get('env_prefix', ENV_PREFIX)}{field}".upper()


def _aliases(settings_cls: type[ServiceSettings]) -> dict[str, str]:
    """Field name -> environment variable, for fields read from a variable of their own."""
    return {
        name: info.validation_alias
        for name, info in settings_cls.model_fields.items()
        if isinstance(info.validation_alias, str)
    }


def _is_secret(settings_cls: type[ServiceSettings], field: str) -> bool:
    """Whether a field (by name or variable) holds secrets, whose values errors never show."""
    names = {alias: name for name, alias in _aliases(settings_cls).items()}
    info = settings_cls.model_fields.get(names.get(field, field))
    return info is not None and "SecretStr" in repr(info.annotation)


def load_settings(settings_cls: type[S], **overrides: object) -> S:
    """Build settings from the environment (and overrides); raise SettingsError naming the bad
    variables."""
    # Aliased fields only accept their alias as a keyword; without this `port=0` is ignored.
    aliases = _aliases(settings_cls)
    init: dict[str, Any] = {aliases.get(key, key): value for key, value in overrides.items()}
    try:
        return settings_cls(**init)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            shown = "<secret>" if _is_secret(settings_cls, field) else repr(error.get("input"))
            problems.append(f"{env_name(settings_cls, field)}={shown}: {error['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
