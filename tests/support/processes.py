"""Service processes started the way `make run` starts them, one at a time."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from ponder_runtime.health import wait_until_serving
from tests.support.ports import free_port


@dataclass
class ServiceProcess:
    """A running service process, its address and its log file."""

    process: asyncio.subprocess.Process
    address: str
    log_path: Path

    def log_lines(self) -> list[str]:
        """The JSON lines written so far."""
        return [line for line in self.log_path.read_text().splitlines() if line[:1] == "{"]


@asynccontextmanager
async def service_process(name: str, log_dir: Path) -> AsyncIterator[ServiceProcess]:
    """`python -m ponder_<name>` on a free port with JSON logs, once SERVING; killed after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    env |= {f"PONDER_{name.upper()}_PORT": str(port), "PONDER_LOG_LEVEL": "INFO"}
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"ponder_{name}", env=env, stdout=log, stderr=log
        )
    running = ServiceProcess(process, f"127.0.0.1:{port}", log_path)
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            await wait_until_serving(channel, timeout=60)
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
