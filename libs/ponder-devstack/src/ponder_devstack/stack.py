"""The four services as child processes on configurable ports, started and drained together."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ponder_runtime.health import check_health
from ponder_runtime.internal_auth import INTERNAL_TOKEN_HEADER


def files_in(root: Path) -> dict[str, str]:
    """The settings that keep a stack's files in `root`: workflow records, the semantic cache,
    the library's vectors."""
    return {
        "PONDER_GATEWAY_STORE_PATH": str(root / "workflows.sqlite3"),
        "PONDER_CACHE_PATH": str(root / "cache.sqlite3"),
        "PONDER_RESEARCH_INDEX_PATH": str(root / "vectors.sqlite3"),
    }


def reap(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for a process told to stop; SIGKILL it after `timeout` seconds; its exit status."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@dataclass(frozen=True, slots=True)
class StackPorts:
    """gRPC ports of the four services and the gateway's HTTP port (the defaults from the
    conventions)."""

    gateway: int = 50051
    research: int = 50052
    reflection: int = 50053
    embedding: int = 50054
    gateway_http: int = 8080

    @classmethod
    def free(cls) -> StackPorts:
        """Five currently free loopback ports (for tests)."""
        sockets = [socket.socket() for _ in range(5)]
        try:
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            ports = [sock.getsockname()[1] for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
        return cls(*ports)


@dataclass(slots=True)
class ServiceProcess:
    """One service's child process and where its logs go."""

    name: str
    module: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the service."""
        return f"127.0.0.1:{self.port}"


@dataclass(slots=True)
class Stack:
    """Starts embedding, research, reflection and the gateway; stops them with SIGTERM."""

    ports: StackPorts = field(default_factory=StackPorts)
    log_dir: Path = Path("var/log")
    extra_env: Mapping[str, str] = field(default_factory=dict)
    services: list[ServiceProcess] = field(default_factory=list)
    # Secrets made for this stack (kept across restarts of one service), used unless the
    # environment or extra_env sets them: the internal token every service-to-service call
    # carries, and the key the gateway signs cached results with.
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    cache_signing_key: str = field(default_factory=lambda: f"devstack:{secrets.token_urlsafe(32)}")

    def __post_init__(self) -> None:
        self.services = [
            ServiceProcess(
                name, f"ponder_{name}", getattr(self.ports, name), self.log_dir / f"{name}.log"
            )
            for name in ("embedding", "research", "reflection", "gateway")
        ]

    def environment(self) -> dict[str, str]:
        """The child processes' environment: ours plus the ports and addresses."""
        env = dict(os.environ)
        for service in self.services:
            env[f"PONDER_{service.name.upper()}_PORT"] = str(service.port)
            env[f"PONDER_{service.name.upper()}_ADDR"] = service.address
        env["PONDER_GATEWAY_HTTP_PORT"] = str(self.ports.gateway_http)
        env.setdefault("PONDER_INTERNAL_TOKEN", self.internal_token)
        env.setdefault("PONDER_GATEWAY_CACHE_SIGNING_KEY", self.cache_signing_key)
        env.update(self.extra_env)
        return env

    def port_map(self) -> dict[str, int]:
        """What each port is for ("gateway gRPC", "gateway HTTP", ...) -> its number."""
        ports = {f"{s.name} gRPC": s.port for s in self.services}
        ports["gateway HTTP"] = self.ports.gateway_http
        return ports

    def internal_metadata(self) -> tuple[tuple[str, str]]:
        """Call metadata that authenticates a direct call to research, reflection or
        embedding (the token the services were given)."""
        return ((INTERNAL_TOKEN_HEADER, self.environment()["PONDER_INTERNAL_TOKEN"]),)

    def start(self) -> None:
        """Spawn every service; each logs JSON lines to its file under log_dir."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        for service in self.services:
            self._spawn(service, env, "wb")

    def _spawn(self, service: ServiceProcess, env: Mapping[str, str], mode: str) -> None:
        with service.log_path.open(mode) as log:
            service.process = subprocess.Popen(
                [sys.executable, "-m", service.module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def service(self, name: str) -> ServiceProcess:
        """The service called `name` ("gateway", "research", ...)."""
        return next(s for s in self.services if s.name == name)

    def signal(self, name: str, signum: int = signal.SIGKILL, timeout: float = 60.0) -> int:
        """Send `signum` to one service (SIGKILL by default: a crash), wait for it to exit and
        return its exit status (negative: killed by that signal)."""
        process = self.service(name).process
        assert process is not None, f"{name} was never started"
        process.send_signal(signum)
        return process.wait(timeout=timeout)

    def restart(self, name: str) -> None:
        """Start one service again (after it exited), on the same port, appending to its log."""
        service = self.service(name)
        if service.process is not None and service.process.poll() is None:
            raise RuntimeError(f"{name} is still running")
        self._spawn(service, self.environment(), "ab")

    async def wait_serving(self, name: str, timeout: float = 120.0) -> None:
        """Wait until one service reports SERVING; fail early when it exits."""
        service = self.service(name)
        deadline = time.monotonic() + timeout
        while True:
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {service.process.returncode}")
            async with grpc.aio.insecure_channel(service.address) as channel:
                if await check_health(channel, timeout=1.0) == "SERVING":
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not SERVING after {timeout:g}s")
            await asyncio.sleep(0.2)

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until every service reports SERVING; fail early when one exits."""
        deadline = time.monotonic() + timeout
        pending = list(self.services)
        while pending:
            for service in list(pending):
                if service.process is not None and service.process.poll() is not None:
                    raise RuntimeError(
                        f"{service.name} exited with {service.process.returncode}; "
                        f"see {service.log_path}"
                    )
                async with grpc.aio.insecure_channel(service.address) as channel:
                    if await check_health(channel, timeout=1.0) == "SERVING":
                        pending.remove(service)
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise TimeoutError(f"not SERVING after {timeout:g}s: {names}")
            if pending:
                await asyncio.sleep(0.25)

    async def wait_for_log(self, name: str, text: str, timeout: float = 120.0) -> None:
        """Wait until service `name` has logged `text` (e.g. research's "library indexed",
        so a benchmark does not measure while the library is still being embedded)."""
        service = next(s for s in self.services if s.name == name)
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while needle not in service.log_path.read_bytes():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not log {text!r} in {timeout:g}s")
            await asyncio.sleep(0.25)

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every service (gateway first), wait for them to drain; return exit codes."""
        running = [s for s in reversed(self.services) if s.process and s.process.poll() is None]
        for service in running:
            assert service.process is not None
            service.process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for service in reversed(self.services):
            if service.process is None:
                continue
            codes[service.name] = reap(service.process, timeout)
        return codes


@contextlib.asynccontextmanager
async def only_service(
    name: str, log_dir: Path, env: Mapping[str, str], *, timeout: float, stop_timeout: float = 30.0
) -> AsyncIterator[tuple[str, int]]:
    """Service `name` alone (free ports, `env` added), once SERVING: its address and pid;
    stopped with SIGTERM afterwards (benchmarks of one service)."""
    stack = Stack(ports=StackPorts.free(), log_dir=log_dir, extra_env=env)
    stack.services = [stack.service(name)]
    stack.start()
    try:
        await stack.wait_ready(timeout=timeout)
        process = stack.services[0].process
        assert process is not None
        yield stack.services[0].address, process.pid
    finally:
        stack.stop(timeout=stop_timeout)


@contextlib.asynccontextmanager
async def temporary_stack(
    extra_env: Mapping[str, str], *, ready_timeout: float = 180.0
) -> AsyncIterator[Stack]:
    """The four services on free ports with their files and logs in a temporary folder
    (files_in), ready; stopped and the folder removed on exit (benchmarks)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack = Stack(
            ports=StackPorts.free(), log_dir=root, extra_env={**files_in(root), **extra_env}
        )
        stack.start()
        try:
            await stack.wait_ready(timeout=ready_timeout)
            yield stack
        finally:
            stack.stop()
