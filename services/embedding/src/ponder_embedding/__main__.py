"""Entry point: `python -m ponder_embedding`."""

from ponder_embedding.service import EmbeddingModule
from ponder_embedding.settings import EmbeddingSettings
from ponder_runtime import run_service


def main() -> None:
    """Run the embedding service until SIGTERM/SIGINT."""
    raise SystemExit(run_service(EmbeddingSettings, EmbeddingModule))


if __name__ == "__main__":
    main()
