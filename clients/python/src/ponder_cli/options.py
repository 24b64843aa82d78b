"""The command-line options every command group shares (address, key, TLS, JSON output)."""

from __future__ import annotations

from typing import Annotated

import typer


Address = Annotated[
    str,
    typer.Option(
        "--address", "-a", envvar="PONDER_ADDRESS", help="The gateway's gRPC address, host:port."
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="PONDER_API_KEY",
        show_default=False,
        help="API key, sent as `authorization: Bearer <key>`.",
    ),
]
Tls = Annotated[bool, typer.Option("--tls", help="Use TLS (the system's trusted roots).")]
Json = Annotated[
    bool, typer.Option("--json", help="Print JSON (one object per line) instead of text.")
]
