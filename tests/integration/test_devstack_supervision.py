"""`make run` (python -m ponder_devstack) over real processes: a service that dies is reported
(name, exit code, last log lines) and stops the stack with a non-zero status; with --restart it
is started again and said so; a port already taken stops it before anything starts, naming the
port and who holds it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ponder_devstack.fake_apis import FakeApi
from ponder_devstack.ports import port_owner, taken_ports
from ponder_devstack.stack import StackPorts
from ponder_runtime.health import check_health
from tests.conftest import research_env


_START_S = 240.0  # the whole stack on two busy cores (a hang guard, not a speed claim)


def _command(ports: StackPorts, log_dir: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "ponder_devstack", "--no-sample", "--log-dir", str(log_dir)]
    for port in dataclasses.fields(StackPorts):
        args += [f"--{port.name.replace('_', '-')}-port", str(getattr(ports, port.name))]
    return [*args, *extra]


class _Run:
    """A running `python -m ponder_devstack` whose stdout is read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdout: list[str] = []

    async def until(self, text: str, timeout: float = _START_S) -> None:
        """Read stdout until a line containing `text` (fails if the process ends first)."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while not any(text in line for line in self.stdout):
                line = await self.process.stdout.readline()
                assert line, f"ended before {text!r}: {self.stdout}"
                self.stdout.append(line.decode())

    async def finish(self) -> tuple[int, str, str]:
        """Wait for the exit: (status, the rest of stdout, stderr)."""
        out, err = await asyncio.wait_for(self.process.communicate(), 120)
        assert self.process.returncode is not None
        return self.process.returncode, "".join(self.stdout) + out.decode(), err.decode()


@pytest.fixture
async def devstack(
    tmp_path: Path, fake_arxiv: FakeApi, fake_tavily: FakeApi, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[_Run, StackPorts]]:
    """The devstack on free ports (cwd and logs in tmp_path), with the test's extra flags."""
    ports = StackPorts.free()
    env = {
        **os.environ,
        "PONDER_LOG_LEVEL": "INFO",
        **research_env(fake_arxiv, fake_tavily, tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        *_command(ports, tmp_path / "log", *request.param),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    run = _Run(process)
    try:
        yield run, ports
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.communicate(), 120)


def _kill_gateway(ports: StackPorts) -> None:
    owner = port_owner(ports.gateway)
    assert owner is not None
    assert "ponder_gateway" in owner, owner
    os.kill(int(owner.split()[1]), signal.SIGKILL)


@pytest.mark.stack
@pytest.mark.parametrize("devstack", [()], indirect=True)
async def test_a_dead_service_is_reported_and_stops_the_stack(
    devstack: tuple[_Run, StackPorts],
) -> None:
    """kill -9 of the gateway: the devstack names it, its signal and its last log lines, stops
    the other three (each drains and exits 0) and exits 1, leaving every port free."""
    run, ports = devstack
    await run.until("serving;")
    _kill_gateway(ports)
    status, out, err = await run.finish()
    assert status == 1, (out, err)
    assert "error: gateway exited (killed by signal 9 (SIGKILL)); last lines of" in err
    assert '"message": "serving"' in err or "serving" in err.split("last lines of", 1)[1]
    assert "stopping the other services" in err
    assert "stopped: " in out
    stopped = out.rsplit("stopped: ", 1)[1]
    for name in ("embedding", "research", "reflection"):
        assert f"{name} exit 0" in stopped, stopped
    assert "gateway exit -9" in stopped
    assert taken_ports({str(port): port for port in dataclasses.astuple(ports)}) == []


@pytest.mark.stack
@pytest.mark.parametrize("devstack", [("--restart",)], indirect=True)
async def test_with_restart_a_dead_service_comes_back(devstack: tuple[_Run, StackPorts]) -> None:
    """With --restart, kill -9 of the gateway is reported, the gateway is started again after
    the backoff (both said on stdout) and serves again; ^C then stops everything with 0."""
    run, ports = devstack
    await run.until("serving (a service that exits is restarted)")
    _kill_gateway(ports)
    await run.until("restarted gateway", timeout=60)
    said = "".join(run.stdout)
    assert "gateway exited (killed by signal 9 (SIGKILL)); last lines of" in said
    assert "restarting gateway in 0.5s (restart 1 in a row)" in said
    async with asyncio.timeout(_START_S):
        while True:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{ports.gateway}") as channel:
                if await check_health(channel, timeout=1.0) == "SERVING":
                    break
            await asyncio.sleep(0.25)
    assert run.process.returncode is None
    run.process.send_signal(signal.SIGINT)
    status, out, err = await run.finish()
    assert status == 0, (out, err)
    assert all(f"{name} exit 0" in out for name in ("gateway", "embedding", "research"))


async def test_a_taken_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    """A second `make run` while another process holds the HTTP port exits 2 at once, naming the
    port, what it is for and the process holding it; no service is started, nothing says
    SERVING."""
    ports = dataclasses.replace(StackPorts.free())
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        ports = dataclasses.replace(ports, gateway_http=held.getsockname()[1])
        process = await asyncio.create_subprocess_exec(
            *_command(ports, tmp_path / "log"),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    text = err.decode()
    assert (
        f"port {ports.gateway_http} (gateway HTTP) is already in use by pid {os.getpid()} (" in text
    )
    assert "SERVING" not in out.decode()
    assert not (tmp_path / "log").exists()
