"""Entry point: `python -m ponder_reflection`."""

from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings
from ponder_runtime import run_service


def main() -> None:
    """Run the reflection service until SIGTERM/SIGINT."""
    raise SystemExit(run_service(ReflectionSettings, ReflectionModule))


if __name__ == "__main__":
    main()
