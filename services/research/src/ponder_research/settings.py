"""Settings of the research service."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ponder_runtime import ServiceSettings


class ResearchSettings(ServiceSettings):
    """PONDER_RESEARCH_* settings (plus the shared PONDER_* ones)."""

    service_name: ClassVar[str] = "research"

    port: int = Field(50052, ge=0, le=65535, validation_alias="PONDER_RESEARCH_PORT")
    library_dirs: list[Path] = Field(
        default_factory=list,
        validation_alias="PONDER_RESEARCH_LIBRARY_DIRS",
        description="Extra folders of .md/.txt/.jsonl documents, as a JSON list.",
    )
    include_sample_library: bool = Field(
        True, validation_alias="PONDER_RESEARCH_INCLUDE_SAMPLE_LIBRARY"
    )
    source_timeout_seconds: float = Field(
        10.0, gt=0, le=120, validation_alias="PONDER_RESEARCH_SOURCE_TIMEOUT_SECONDS"
    )
