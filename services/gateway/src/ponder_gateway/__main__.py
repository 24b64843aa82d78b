"""Entry point: `python -m ponder_gateway`."""

from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_runtime import run_service


def main() -> None:
    """Run the gateway until SIGTERM/SIGINT."""
    raise SystemExit(run_service(GatewaySettings, GatewayModule))


if __name__ == "__main__":
    main()
