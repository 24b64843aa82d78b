"""The devstack's supervision of real child processes: an exit is reported with its code and
last log lines, `--restart` starts the child again with backoff, a taken port is named with
the process holding it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ponder_devstack.ports import port_owner, taken_ports
from ponder_devstack.supervisor import Backoff, Supervisor, describe_exit, last_lines


@dataclass
class _Child:
    """A supervised python child writing to its own log."""

    name: str
    log_path: Path
    script: str
    process: subprocess.Popen[bytes] | None = None

    def start(self, script: str | None = None) -> None:
        """Spawn the child (appending to its log)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", script or self.script], stdout=log, stderr=subprocess.STDOUT
            )


_CRASH = (
    "import sys\nfor i in range(40): print(f'line {i}')\nprint('boom: address in use')\nsys.exit(3)"
)
_SLEEP = "import time\nprint('up', flush=True)\ntime.sleep(120)"


async def test_an_exit_is_reported_with_its_code_and_last_lines(tmp_path: Path) -> None:
    """The first child to exit is returned with its exit code and the tail of its log, while
    the others keep running."""
    steady = _Child("research", tmp_path / "research.log", _SLEEP)
    crashing = _Child("gateway", tmp_path / "gateway.log", _CRASH)
    steady.start()
    crashing.start()
    messages: list[str] = []
    try:
        gone = await asyncio.wait_for(
            Supervisor([steady, crashing], say=messages.append, interval=0.05).watch(), 60
        )
        assert gone.name == "gateway"
        assert gone.code == 3
        assert gone.lines[-1] == "boom: address in use"
        assert len(gone.lines) == 15
        assert gone.lines[0] == "line 26"
        report = gone.report()
        assert report.startswith(f"gateway exited (exit code 3); last lines of {crashing.log_path}")
        assert "  | boom: address in use" in report
        assert steady.process is not None
        assert steady.process.poll() is None
        assert messages == []  # nothing restarted
    finally:
        assert steady.process is not None
        steady.process.kill()
        steady.process.wait()


async def test_with_restart_the_child_is_started_again_and_the_restart_is_said(
    tmp_path: Path,
) -> None:
    """With a respawn callback, an exited child is started again after the backoff, each
    step announced; the delays double while it keeps failing."""
    child = _Child("reflection", tmp_path / "reflection.log", _CRASH)
    child.start()
    starts: list[str] = []

    def respawn(name: str) -> None:
        starts.append(name)
        child.start(_CRASH if len(starts) < 2 else _SLEEP)  # fails once more, then stays up

    messages: list[str] = []
    supervisor = Supervisor(
        [child], respawn=respawn, backoff=Backoff(initial=0.01), say=messages.append, interval=0.02
    )
    watching = asyncio.create_task(supervisor.watch())
    try:
        async with asyncio.timeout(60):
            while supervisor.restarts.get("reflection", 0) < 2:  # noqa: ASYNC110  # a poll of a counter
                await asyncio.sleep(0.02)
        assert starts == ["reflection", "reflection"]
        assert messages[0].startswith("reflection exited (exit code 3)")
        assert "restarting reflection in 0.0s (restart 1 in a row)" in messages
        assert "restarting reflection in 0.0s (restart 2 in a row)" in messages
        assert messages.count("restarted reflection") == 2
        assert child.process is not None
        assert child.process.poll() is None
        assert not watching.done()
    finally:
        watching.cancel()
        assert child.process is not None
        child.process.kill()
        child.process.wait()


def test_backoff_doubles_up_to_its_maximum() -> None:
    """Restart delays double from the initial one and stop at the maximum."""
    backoff = Backoff(initial=0.5, maximum=4.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_exit_codes_and_signals_are_described() -> None:
    """Negative exit statuses name the signal that killed the process."""
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(-signal.SIGKILL) == "killed by signal 9 (SIGKILL)"


def test_last_lines_reads_the_tail_of_a_missing_or_long_log(tmp_path: Path) -> None:
    """The tail of a log is its last lines; a log that does not exist has none."""
    log = tmp_path / "x.log"
    assert last_lines(log) == []
    log.write_text("".join(f"{i}\n" for i in range(100_000)))
    assert last_lines(log, 3) == ["99997", "99998", "99999"]


def test_a_taken_port_is_named_with_the_process_that_holds_it() -> None:
    """A port something listens on is reported with that process's pid and command line;
    a free one is not reported."""
    with socket.socket() as held, socket.socket() as free:
        held.bind(("127.0.0.1", 0))
        held.listen()
        free.bind(("127.0.0.1", 0))
        port, free_port = held.getsockname()[1], free.getsockname()[1]
        free.close()
        assert port_owner(port) is not None
        assert str(port_owner(port)).startswith(f"pid {os.getpid()} (")
        problems = taken_ports({"gateway gRPC": port, "research gRPC": free_port})
        assert problems == [f"port {port} (gateway gRPC) is already in use by {port_owner(port)}"]
