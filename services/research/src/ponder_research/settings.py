"""Settings of the research service."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ponder_runtime import ServiceSettings


class ResearchSettings(ServiceSettings):
    """PONDER_RESEARCH_* settings, the embedding service's address and TAVILY_API_KEY."""

    model_config = SettingsConfigDict(env_prefix="PONDER_RESEARCH_")

    service_name: ClassVar[str] = "research"

    port: int = Field(50052, ge=0, le=65535)
    library_dirs: list[Path] = Field(
        default_factory=list,
        description=(
            "Extra folders of .md/.txt/.html/.pdf/.jsonl documents, as a JSON list (files that "
            "cannot be read are logged and skipped)."
        ),
    )
    include_sample_library: bool = Field(True)
    index_path: Path = Field(
        Path("var/cache/research-library-vectors.sqlite3"),
        description="Where library embeddings are kept, so restarts embed only new documents.",
    )
    library_uploads_path: Path | None = Field(
        None,
        description="Where uploaded documents (LibraryService) and their indexing states are "
        "kept (they are indexed again after a restart); unset: research-library-uploads.sqlite3 "
        "beside PONDER_RESEARCH_INDEX_PATH.",
    )
    library_max_document_bytes: int = Field(
        6 * 1024 * 1024,
        ge=1,
        le=256 * 1024 * 1024,
        description="Largest uploaded file (INVALID_ARGUMENT beyond); keep it below "
        "PONDER_MAX_MESSAGE_BYTES, which bounds every gRPC message.",
    )
    library_max_documents: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Most documents one library holds (RESOURCE_EXHAUSTED beyond).",
    )

    library_min_similarity: float = Field(0.3, ge=-1, le=1)
    source_timeout_seconds: float = Field(10.0, gt=0, le=120)
    arxiv_api_url: str = Field("https://export.arxiv.org/api/query")
    arxiv_min_interval_seconds: float = Field(
        3.0,
        ge=0,
        le=60,
        description="Least time between two arXiv requests of this process (arXiv asks 3 s).",
    )
    arxiv_http_timeout_seconds: float = Field(10.0, gt=0, le=120)
    tavily_api_key: SecretStr | None = Field(None, validation_alias="TAVILY_API_KEY")
    tavily_api_url: str = Field("https://api.tavily.com")
    embedding_addr: str = Field("127.0.0.1:50054", validation_alias="PONDER_EMBEDDING_ADDR")
    embedding_timeout_seconds: float = Field(5.0, gt=0, le=120)
    source_cache_ttl_seconds: float = Field(300.0, ge=0, le=86400)
    source_cache_max_entries: int = Field(1024, ge=1, le=1_000_000)
    index_retry_seconds: float = Field(5.0, gt=0, le=3600)

    @property
    def uploads_path(self) -> Path:
        """The uploads' SQLite file (the setting, or beside the vector index)."""
        return self.library_uploads_path or self.index_path.with_name(
            "research-library-uploads.sqlite3"
        )
