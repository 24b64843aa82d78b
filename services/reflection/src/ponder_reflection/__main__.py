"""Entry point: `python -m ponder_reflection`."""

from ponder_runtime import run_service

from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings


def main() -> None:
    """Run the reflection service until SIGTERM/SIGINT."""
    raise SystemExit(run_service(ReflectionSettings, ReflectionModule))


if __name__ == "__main__":
    main()
