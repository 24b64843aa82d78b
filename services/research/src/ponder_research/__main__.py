"""Entry point: `python -m ponder_research`."""

from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import run_service


def main() -> None:
    """Run the research service until SIGTERM/SIGINT."""
    raise SystemExit(run_service(ResearchSettings, ResearchModule))


if __name__ == "__main__":
    main()
