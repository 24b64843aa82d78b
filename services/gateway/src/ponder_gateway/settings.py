"""Settings of the gateway."""

import re
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from ponder_gateway.cache_signing import SigningKey
from ponder_gateway.principals import DEFAULT_SCOPES, Scope, read_keys
from ponder_gateway.webhooks.destinations import DestinationPolicy
from ponder_gateway.webhooks.secrets import parse_secrets, read_secrets_file
from ponder_runtime import ServiceSettings


_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class GatewaySettings(ServiceSettings):
    """PONDER_GATEWAY_* settings, the downstream addresses and per-step timeouts."""

    model_config = SettingsConfigDict(env_prefix="PONDER_GATEWAY_")

    service_name: ClassVar[str] = "gateway"

    port: int = Field(50051, ge=0, le=65535)
    http_port: int = Field(
        8080,
        ge=-1,
        le=65535,
        description="Port of the REST/JSON facade (OpenAPI, /docs, /redoc, /healthz); "
        "0 picks a free port, -1 turns the facade off.",
    )
    http_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Larger request bodies are refused with 413.",
    )
    http_max_upload_bytes: int = Field(
        6 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Larger file uploads over REST (routes whose body is a google.api.HttpBody, "
        "raw or multipart) are refused with 413; keep it equal to research's "
        "PONDER_RESEARCH_LIBRARY_MAX_DOCUMENT_BYTES (both 6 MiB by default).",
    )
    http_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="A request's headers must arrive within this (from its first byte, or "
        "from the connection's opening), else 408 and the connection is closed (slow-loris).",
    )
    http_max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Larger request headers are refused with 431 and the connection closed.",
    )
    http_max_connections: int = Field(
        2048,
        ge=1,
        le=1_000_000,
        description="Past this many open connections, the one waiting longest for its "
        "headers is closed to make room (503 to the newcomer if none is waiting).",
    )
    http_keep_alive_seconds: float = Field(
        75.0,
        ge=1,
        le=3600,
        description="An idle keep-alive connection is closed after this long.",
    )
    http_default_timeout_seconds: float = Field(
        0.0,
        ge=0,
        le=86400,
        description="Deadline of REST calls that send no Grpc-Timeout or X-Request-Timeout "
        "header; 0 means none (workflow steps keep their own timeouts).",
    )
    http_access_log: bool = Field(
        True,
        description="One JSON log line per REST request.",
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        description='Origins browsers may call the REST facade from, as a JSON list; "*" '
        "allows any origin, but never with credentials.",
    )
    cors_allow_credentials: bool = Field(
        False,
        description="Let the listed (not wildcard) origins send credentials; refused "
        'together with "*" in PONDER_GATEWAY_CORS_ALLOWED_ORIGINS.',
    )
    json_use_proto_names: bool = Field(
        False,
        description="REST responses use proto field names (snake_case) instead of lowerCamelCase.",
    )
    json_emit_unpopulated: bool = Field(
        True,
        description="REST responses include fields at their default value (zeros, empty lists).",
    )
    research_addr: str = Field("127.0.0.1:50052", validation_alias="PONDER_RESEARCH_ADDR")
    reflection_addr: str = Field("127.0.0.1:50053", validation_alias="PONDER_REFLECTION_ADDR")
    embedding_addr: str = Field("127.0.0.1:50054", validation_alias="PONDER_EMBEDDING_ADDR")
    expose_internal_services: bool = Field(
        False,
        description="Forward research, embedding and reflection on the gateway's port "
        "(debugging with one address); their methods then need the `internal` scope (and "
        "the cache methods `cache.admin` too). Off by default: only WorkflowService is public.",
    )
    store_path: Path = Field(
        Path("var/data/gateway-workflows.sqlite3"),
        description="SQLite file of workflow records.",
    )
    retention: timedelta = Field(
        timedelta(days=30),
        description="Finished workflow records (and their events) older than this, by their "
        "last update, are purged in the background: `30d`, `12h`, `90m`, `45s`, seconds, or "
        "ISO 8601 (`P30D`); 0 keeps them forever.",
    )
    retention_sweep_seconds: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="How often the retention sweep runs.",
    )
    retention_batch: int = Field(
        500,
        ge=1,
        le=100_000,
        description="Records purged per transaction (the sweep repeats until none is due).",
    )
    cache_similarity_threshold: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Recall threshold of cache lookups (candidates the embedding service's "
        "verifier then checks); 0 means the embedding service's default.",
    )
    cache_scope: Literal["global", "per-tenant", "per-key"] = Field(
        "global",
        description="global: every caller shares cached answers (public sources); per-tenant: "
        "cached answers are kept per tenant of the keys file; per-key: per API key (its hash is "
        "in the namespace); so one tenant never receives another's.",
    )
    cache_library_version_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="How long the library version (from research's GetLibrary, part of the "
        "cache namespace of library workflows) is reused before asking again; 0 asks on "
        "every lookup.",
    )
    cache_ttl_seconds: float = Field(7 * 24 * 3600, gt=0)
    cache_recent_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Exact repeats of a topic are answered from the gateway's memory for this "
        "long (no embedding round trip); 0 turns that off. An invalidated or refreshed answer "
        "may be served this much longer by the other replicas.",
    )
    cache_recent_entries: int = Field(1024, ge=0, le=1_000_000)
    replay_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="A Run*Workflow request identical to one that succeeded this recently gets "
        "the same workflow back (header metadata x-ponder-replay-age) instead of a new one; "
        "0 turns that off.",
    )
    replay_entries: int = Field(1024, ge=0, le=1_000_000)
    redis_url: str = Field(
        "",
        description="redis://host:port/db: workflow records and rate limits shared by replicas "
        "(instead of the SQLite file and in-memory buckets).",
    )
    allow_anonymous: bool = Field(
        True,
        description="Accept calls without an API key (local use); a wrong key is always refused.",
    )
    anonymous_tenant: str = Field(
        "anonymous",
        pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$",
        description="The tenant of calls without a key (when anonymous access is allowed).",
    )
    anonymous_scopes: frozenset[Scope] = Field(
        DEFAULT_SCOPES,
        description="Scopes of calls without a key, as a JSON list (principals.Scope).",
    )
    api_key_hashes: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex digests of accepted API keys, as a JSON list.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="The keys file (a mounted secret): one key per line, a JSON object "
        '{"key_id", "sha256", "tenant", "scopes"} or a bare SHA-256 digest (tenant `default`, '
        "default scopes); see principals.py.",
    )
    rate_limit_per_second: float = Field(
        20.0,
        ge=0,
        le=1e6,
        description="Requests per second per caller; 0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(40, ge=1, le=1_000_000)
    tenant_rate_limit_per_second: float = Field(
        100.0,
        ge=0,
        le=1e6,
        description="Requests per second of all of a tenant's keys together (on top of each "
        "key's own limit); 0 turns it off. Anonymous calls are limited per address only.",
    )
    tenant_rate_limit_burst: int = Field(200, ge=1, le=1_000_000)
    cache_signing_key: SecretStr | None = Field(
        None,
        description="`<key id>:<secret>` (from a Secret): workflow results put in the semantic "
        "cache are signed with it (HMAC-SHA256), and a cached result that does not verify is "
        "a miss. Unset: a random key per process (nothing survives a restart or is shared by "
        "replicas).",
    )
    cache_verification_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Earlier signing keys still accepted when reading the cache, as a JSON list "
        "of `<key id>:<secret>` (key rotation).",
    )
    max_running_workflows: int = Field(64, ge=1, le=100_000)
    max_queued_workflows: int = Field(
        256,
        ge=0,
        le=1_000_000,
        description="Workflows waiting for a running slot; beyond it RESOURCE_EXHAUSTED.",
    )
    max_workflows_per_tenant: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Workflows one tenant (all its keys) may have running or queued on a "
        "gateway at once; beyond it RESOURCE_EXHAUSTED. 0: only the gateway's capacity.",
    )
    max_workflows_per_key: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="The same budget per API key (per address for anonymous callers); 0: none.",
    )
    research_timeout_seconds: float = Field(30.0, gt=0, le=600)
    rank_timeout_seconds: float = Field(10.0, gt=0, le=600)
    reflection_timeout_seconds: float = Field(300.0, gt=0, le=3600)

    # -- completion webhooks (webhooks/) --------------------------------------------------
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Webhook signing secrets by name, as a JSON object {"<name>": "<secret>"} '
        '(a name "<tenant>:<name>" serves only that tenant); a notification target names one. '
        "Each secret is at least 16 characters; a list of secrets signs with each (rotation).",
    )
    webhook_secrets_file: Path | None = Field(
        None,
        description="The same JSON object in a file (a mounted secret), merged over "
        "PONDER_GATEWAY_WEBHOOK_SECRETS; read at start-up.",
    )
    webhook_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"],
        description='Hosts webhooks may go to, as a JSON list: "*" (any), a name '
        '("hooks.example.com"), a suffix ("*.example.com"), an address or a CIDR; [] turns '
        "webhooks off. Every address a host resolves to must still be public unless "
        "PONDER_GATEWAY_WEBHOOK_ALLOWED_NETWORKS holds it.",
    )
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Non-public networks webhooks may reach anyway, as a JSON list of CIDRs "
        '(e.g. ["10.1.2.0/24"]); loopback, private, link-local, multicast and unspecified '
        "addresses are refused otherwise.",
    )
    webhook_retry_seconds: float = Field(
        3600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="A webhook is retried for at most this long after the workflow ended, "
        "then its delivery is FAILED.",
    )
    webhook_initial_backoff_seconds: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="Wait before the first retry; doubled for each further one (with jitter).",
    )
    webhook_max_backoff_seconds: float = Field(
        300.0,
        gt=0,
        le=24 * 3600,
        description="Longest wait between two attempts.",
    )
    webhook_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="One attempt (connect, send, answer) must finish within this.",
    )
    webhook_sweep_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="How often the gateway looks for deliveries nobody is making (left by a "
        "stopped gateway or replica, or ended on a Temporal worker while no gateway followed).",
    )

    @field_validator("webhook_secrets")
    @classmethod
    def _webhook_secrets_valid(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        """Secret names and lengths are checked at start-up (the message names the secret,
        never its value)."""
        parse_secrets({name: secret.get_secret_value() for name, secret in value.items()})
        return value

    @field_validator("webhook_secrets_file")
    @classmethod
    def _webhook_secrets_file_reads(cls, value: Path | None) -> Path | None:
        """The secrets file is read at start-up, so a bad one stops the gateway."""
        if value is not None:
            read_secrets_file(value)
        return value

    @field_validator("webhook_allowed_hosts", "webhook_allowed_networks")
    @classmethod
    def _webhook_destinations_parse(cls, value: list[str], info: ValidationInfo) -> list[str]:
        """Each allowed host or network must parse (a bad CIDR stops the start-up)."""
        if info.field_name == "webhook_allowed_networks":
            DestinationPolicy(hosts=(), networks=value)
        else:
            DestinationPolicy(hosts=value, networks=())
        return value

    @field_validator("retention", mode="before")
    @classmethod
    def _retention_units(cls, value: object) -> object:
        """`30d`, `12h`, `90m`, `45s` as well as what pydantic reads (seconds, ISO 8601)."""
        if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
            return timedelta(seconds=float(value))  # plain seconds
        if isinstance(value, str) and value.strip()[-1:] in _UNITS:
            text = value.strip()
            try:
                return timedelta(seconds=float(text[:-1]) * _UNITS[text[-1]])
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a duration such as 30d, 12h, 90m or 45s"
                ) from None
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _keys_file_reads(cls, value: Path | None) -> Path | None:
        """The keys file is read once at start-up, so a malformed line stops the gateway
        with the file and line number (never a key)."""
        if value is not None:
            try:
                read_keys(value, [])
            except OSError as exc:
                raise ValueError(f"cannot read the keys file: {exc.strerror}") from None
        return value

    @field_validator("cache_signing_key", "cache_verification_keys")
    @classmethod
    def _signing_keys_parse(cls, value: object) -> object:
        """Each cache signing key is `<key id>:<secret>` with a long enough secret; refused
        at start-up otherwise (the message names the key id, never the secret)."""
        for key in value if isinstance(value, list) else [value]:
            if isinstance(key, SecretStr):
                SigningKey.parse(key.get_secret_value())
        return value

    engine: Literal["local", "temporal"] = Field(
        "local",
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

    @field_validator("engine")
    @classmethod
    def _temporal_shares_a_cache_key(cls, value: str, info: ValidationInfo) -> str:
        """With Temporal, gateways and workers sign and verify the cache with one key: refused
        at start-up without PONDER_GATEWAY_CACHE_SIGNING_KEY (each process would sign with a
        random key of its own, nothing one stored would verify in another, and every repeat
        would run in full)."""
        if value == "temporal" and info.data.get("cache_signing_key", "") is None:
            raise ValueError(
                "temporal needs PONDER_GATEWAY_CACHE_SIGNING_KEY (`<key id>:<secret>`, the same "
                "on every gateway and worker): the cache is shared through it"
            )
        return value

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
