"""Settings of the gateway."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from ponder_runtime import ServiceSettings


class GatewaySettings(ServiceSettings):
    """PONDER_GATEWAY_* settings, the downstream addresses and per-step timeouts."""

    service_name: ClassVar[str] = "gateway"

    port: int = Field(50051, ge=0, le=65535, validation_alias="PONDER_GATEWAY_PORT")
    metrics_port: int = Field(
        -1,
        ge=-1,
        le=65535,
        validation_alias="PONDER_GATEWAY_METRICS_PORT",
        description="Prometheus text endpoint (GET /metrics): -1 off, 0 a free port.",
    )
    http_port: int = Field(
        8080,
        ge=-1,
        le=65535,
        validation_alias="PONDER_GATEWAY_HTTP_PORT",
        description="Port of the REST/JSON facade (OpenAPI, /docs, /redoc, /healthz); "
        "0 picks a free port, -1 turns the facade off.",
    )
    http_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        validation_alias="PONDER_GATEWAY_HTTP_MAX_BODY_BYTES",
        description="Larger request bodies are refused with 413.",
    )
    http_default_timeout_seconds: float = Field(
        0.0,
        ge=0,
        le=86400,
        validation_alias="PONDER_GATEWAY_HTTP_DEFAULT_TIMEOUT_SECONDS",
        description="Deadline of REST calls that send no Grpc-Timeout or X-Request-Timeout "
        "header; 0 means none (workflow steps keep their own timeouts).",
    )
    http_access_log: bool = Field(
        True,
        validation_alias="PONDER_GATEWAY_HTTP_ACCESS_LOG",
        description="One JSON log line per REST request.",
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        validation_alias="PONDER_GATEWAY_CORS_ALLOWED_ORIGINS",
        description='Origins browsers may call the REST facade from, as a JSON list; "*" '
        "allows any origin, but never with credentials.",
    )
    cors_allow_credentials: bool = Field(
        False,
        validation_alias="PONDER_GATEWAY_CORS_ALLOW_CREDENTIALS",
        description="Let the listed (not wildcard) origins send credentials; refused "
        'together with "*" in PONDER_GATEWAY_CORS_ALLOWED_ORIGINS.',
    )
    json_use_proto_names: bool = Field(
        False,
        validation_alias="PONDER_GATEWAY_JSON_USE_PROTO_NAMES",
        description="REST responses use proto field names (snake_case) instead of lowerCamelCase.",
    )
    json_emit_unpopulated: bool = Field(
        True,
        validation_alias="PONDER_GATEWAY_JSON_EMIT_UNPOPULATED",
        description="REST responses include fields at their default value (zeros, empty lists).",
    )
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
    cache_recent_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        validation_alias="PONDER_GATEWAY_CACHE_RECENT_SECONDS",
        description="Exact repeats of a topic are answered from the gateway's memory for this "
        "long (no embedding round trip); 0 turns that off. An invalidated or refreshed answer "
        "may be served this much longer by the other replicas.",
    )
    cache_recent_entries: int = Field(
        1024, ge=0, le=1_000_000, validation_alias="PONDER_GATEWAY_CACHE_RECENT_ENTRIES"
    )
    replay_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        validation_alias="PONDER_GATEWAY_REPLAY_SECONDS",
        description="A Run*Workflow request identical to one that succeeded this recently gets "
        "the same workflow back (header metadata x-ponder-replay-age) instead of a new one; "
        "0 turns that off.",
    )
    replay_entries: int = Field(
        1024, ge=0, le=1_000_000, validation_alias="PONDER_GATEWAY_REPLAY_ENTRIES"
    )
    redis_url: str = Field(
        "",
        validation_alias="PONDER_GATEWAY_REDIS_URL",
        description="redis://host:port/db: workflow records and rate limits shared by replicas "
        "(instead of the SQLite file and in-memory buckets).",
    )
    allow_anonymous: bool = Field(
        True,
        validation_alias="PONDER_GATEWAY_ALLOW_ANONYMOUS",
        description="Accept calls without an API key (local use); a wrong key is always refused.",
    )
    api_key_hashes: list[str] = Field(
        default_factory=list,
        validation_alias="PONDER_GATEWAY_API_KEY_HASHES",
        description="SHA-256 hex digests of accepted API keys, as a JSON list.",
    )
    api_keys_file: Path | None = Field(
        None,
        validation_alias="PONDER_GATEWAY_API_KEYS_FILE",
        description="A file of SHA-256 digests of API keys, one per line (a mounted secret).",
    )
    rate_limit_per_second: float = Field(
        20.0,
        ge=0,
        le=1e6,
        validation_alias="PONDER_GATEWAY_RATE_LIMIT_PER_SECOND",
        description="Requests per second per caller; 0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(
        40, ge=1, le=1_000_000, validation_alias="PONDER_GATEWAY_RATE_LIMIT_BURST"
    )
    max_running_workflows: int = Field(
        64, ge=1, le=100_000, validation_alias="PONDER_GATEWAY_MAX_RUNNING_WORKFLOWS"
    )
    max_queued_workflows: int = Field(
        256,
        ge=0,
        le=1_000_000,
        validation_alias="PONDER_GATEWAY_MAX_QUEUED_WORKFLOWS",
        description="Workflows waiting for a running slot; beyond it RESOURCE_EXHAUSTED.",
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

    engine: Literal["local", "temporal"] = Field(
        "local",
        validation_alias="PONDER_GATEWAY_ENGINE",
        description="What runs workflows: `local` (asyncio tasks in this gateway) or "
        "`temporal` (durable Temporal workflows run by `python -m ponder_gateway.worker`; "
        "records and events shared through PONDER_GATEWAY_REDIS_URL or the SQLite file).",
    )
    temporal_address: str = Field(
        "127.0.0.1:7233",
        validation_alias="PONDER_TEMPORAL_ADDRESS",
        description="host:port of the Temporal frontend (engine `temporal`).",
    )
    temporal_namespace: str = Field(
        "default", min_length=1, validation_alias="PONDER_TEMPORAL_NAMESPACE"
    )
    temporal_task_queue: str = Field(
        "ponder-workflows",
        min_length=1,
        validation_alias="PONDER_TEMPORAL_TASK_QUEUE",
        description="The task queue the gateway starts workflows on and workers poll.",
    )
    temporal_heartbeat_timeout_seconds: float = Field(
        10.0,
        gt=1,
        le=600,
        validation_alias="PONDER_TEMPORAL_HEARTBEAT_TIMEOUT_SECONDS",
        description="A long activity (research, reflection) whose worker has not "
        "heartbeated for this long is retried on another worker.",
    )
    worker_health_port: int = Field(
        50055,
        ge=-1,
        le=65535,
        validation_alias="PONDER_WORKER_HEALTH_PORT",
        description="The worker's grpc.health.v1 port (SERVING while it polls Temporal; "
        "for probes); 0 picks a free port, -1 turns it off.",
    )
    worker_max_concurrent_activities: int = Field(
        200,
        ge=1,
        le=100_000,
        validation_alias="PONDER_WORKER_MAX_CONCURRENT_ACTIVITIES",
        description="Activities one worker process runs at once.",
    )

    @field_validator("cors_allow_credentials")
    @classmethod
    def _no_credentials_for_any_origin(cls, value: bool, info: ValidationInfo) -> bool:
        """A wildcard origin with credentials is refused at start-up: browsers reject
        `*` with credentials, and a server that echoed the caller's origin instead would let
        any site make credentialed calls. List the trusted origins instead."""
        if value and "*" in info.data.get("cors_allowed_origins", ()):
            raise ValueError(
                'cannot be true while PONDER_GATEWAY_CORS_ALLOWED_ORIGINS contains "*" (any '
                "origin): list the origins that may send credentials instead"
            )
        return value
