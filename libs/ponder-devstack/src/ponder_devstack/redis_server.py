"""A local redis-server (the Debian package) that can be stopped and started again on the same
port and files, for outage tests and the soak: append-only, fsync on every write, so what it
acknowledged survives a stop."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from ponder_devstack.ports import free_port


class RedisServer:
    """One redis-server process on a free 127.0.0.1 port, its files under `workdir`."""

    def __init__(self, workdir: Path, port: int = 0) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start (or start again) and return once it answers PING."""
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed: run `make redis`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)],
                cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        with redis.Redis.from_url(self.url, socket_connect_timeout=1.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {log.read_text()[-2000:]}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server did not answer PING in {timeout:g}s")
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop it as a service manager does (SIGTERM) and wait for the exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
