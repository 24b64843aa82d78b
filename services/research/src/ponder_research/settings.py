"""Settings of the research service."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr

from ponder_runtime import ServiceSettings


class ResearchSettings(ServiceSettings):
    """PONDER_RESEARCH_* settings, the embedding service's address and TAVILY_API_KEY."""

    service_name: ClassVar[str] = "research"

    port: int = Field(50052, ge=0, le=65535, validation_alias="PONDER_RESEARCH_PORT")
    metrics_port: int = Field(
        -1,
        ge=-1,
        le=65535,
        validation_alias="PONDER_RESEARCH_METRICS_PORT",
        description="Prometheus text endpoint (GET /metrics): -1 off, 0 a free port.",
    )
    library_dirs: list[Path] = Field(
        default_factory=list,
        validation_alias="PONDER_RESEARCH_LIBRARY_DIRS",
        description=(
            "Extra folders of .md/.txt/.html/.pdf/.jsonl documents, as a JSON list (files that "
            "cannot be read are logged and skipped)."
        ),
    )
    include_sample_library: bool = Field(
        True, validation_alias="PONDER_RESEARCH_INCLUDE_SAMPLE_LIBRARY"
    )
    index_path: Path = Field(
        Path("var/cache/research-library-vectors.sqlite3"),
        validation_alias="PONDER_RESEARCH_INDEX_PATH",
        description="Where library embeddings are kept, so restarts embed only new documents.",
    )
    library_min_similarity: float = Field(
        0.3, ge=-1, le=1, validation_alias="PONDER_RESEARCH_LIBRARY_MIN_SIMILARITY"
    )
    source_timeout_seconds: float = Field(
        10.0, gt=0, le=120, validation_alias="PONDER_RESEARCH_SOURCE_TIMEOUT_SECONDS"
    )
    arxiv_api_url: str = Field(
        "https://export.arxiv.org/api/query", validation_alias="PONDER_RESEARCH_ARXIV_API_URL"
    )
    arxiv_min_interval_seconds: float = Field(
        3.0,
        ge=0,
        le=60,
        validation_alias="PONDER_RESEARCH_ARXIV_MIN_INTERVAL_SECONDS",
        description="Least time between two arXiv requests of this process (arXiv asks 3 s).",
    )
    arxiv_http_timeout_seconds: float = Field(
        10.0, gt=0, le=120, validation_alias="PONDER_RESEARCH_ARXIV_HTTP_TIMEOUT_SECONDS"
    )
    tavily_api_key: SecretStr | None = Field(None, validation_alias="TAVILY_API_KEY")
    tavily_api_url: str = Field(
        "https://api.tavily.com", validation_alias="PONDER_RESEARCH_TAVILY_API_URL"
    )
    embedding_addr: str = Field("127.0.0.1:50054", validation_alias="PONDER_EMBEDDING_ADDR")
    embedding_timeout_seconds: float = Field(
        5.0, gt=0, le=120, validation_alias="PONDER_RESEARCH_EMBEDDING_TIMEOUT_SECONDS"
    )
    source_cache_ttl_seconds: float = Field(
        300.0, ge=0, le=86400, validation_alias="PONDER_RESEARCH_SOURCE_CACHE_TTL_SECONDS"
    )
    source_cache_max_entries: int = Field(
        1024, ge=1, le=1_000_000, validation_alias="PONDER_RESEARCH_SOURCE_CACHE_MAX_ENTRIES"
    )
    index_retry_seconds: float = Field(
        5.0, gt=0, le=3600, validation_alias="PONDER_RESEARCH_INDEX_RETRY_SECONDS"
    )
