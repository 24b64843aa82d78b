"""Watching a list of child processes: report the first that exits (name, exit code, last log
lines), or restart it with exponential backoff and say so.

Generic over its children: anything with a `name`, a `process` (a Popen, or None before it
starts) and a `log_path` (the four services, a Temporal dev server, a worker).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class Child(Protocol):
    """A supervised child process."""

    @property
    def name(self) -> str:
        """What the reports call it."""
        ...

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running process (None before the first start)."""
        ...

    @property
    def log_path(self) -> Path:
        """Where its output goes."""
        ...


def last_lines(path: Path, count: int = 15, max_bytes: int = 64 * 1024) -> list[str]:
    """The last `count` lines of a log file (read from its end; [] when there is none)."""
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - max_bytes))
            tail = log.read()
    except FileNotFoundError:
        return []
    return tail.decode(errors="replace").splitlines()[-count:]


def describe_exit(code: int) -> str:
    """'exit code 3' or 'killed by signal 9 (SIGKILL)'."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "unknown"
    return f"killed by signal {-code} ({name})"


def say(message: str) -> None:
    """Print a supervision message at once (stdout may be a pipe)."""
    print(message, flush=True)


@dataclass(frozen=True, slots=True)
class Exited:
    """A child that exited: who, how, and what it logged last."""

    name: str
    code: int
    log_path: Path
    lines: list[str]

    def report(self) -> str:
        """The message `make run` prints."""
        head = f"{self.name} exited ({describe_exit(self.code)}); last lines of {self.log_path}:"
        return "\n".join([head, *(f"  | {line}" for line in self.lines)])


@dataclass(slots=True)
class Backoff:
    """Restart delays: `initial`, doubling up to `maximum`; back to `initial` once a child has
    stayed up for `stable` seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    stable: float = 60.0

    def delay(self, restarts_in_a_row: int) -> float:
        """Seconds to wait before restart number `restarts_in_a_row` (from 1)."""
        return float(min(self.maximum, self.initial * 2 ** (restarts_in_a_row - 1)))


@dataclass(slots=True)
class Supervisor:
    """Polls its children; `watch()` returns the first one that exits, or, with `restart`
    set, starts it again through `respawn(name)` after a backoff and keeps watching."""

    children: Sequence[Child]
    respawn: Callable[[str], None] | None = None
    backoff: Backoff = field(default_factory=Backoff)
    say: Callable[[str], None] = say
    interval: float = 0.2
    restarts: dict[str, int] = field(default_factory=dict)
    _in_a_row: dict[str, int] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)

    def exited(self) -> Exited | None:
        """The first child whose process has ended, if any."""
        for child in self.children:
            process = child.process
            if process is not None and process.poll() is not None:
                return Exited(
                    child.name, process.returncode, child.log_path, last_lines(child.log_path)
                )
        return None

    async def watch(self) -> Exited:
        """Wait for a child to exit; without `respawn`, return it; with it, restart it with
        backoff (saying so) and go on watching (this then returns only if a restart fails)."""
        now = time.monotonic()
        for child in self.children:
            self._started.setdefault(child.name, now)
        while True:
            gone = self.exited()
            if gone is None:
                await asyncio.sleep(self.interval)
                continue
            if self.respawn is None:
                return gone
            up_for = time.monotonic() - self._started.get(gone.name, 0.0)
            in_a_row = 1 if up_for >= self.backoff.stable else self._in_a_row.get(gone.name, 0) + 1
            self._in_a_row[gone.name] = in_a_row
            delay = self.backoff.delay(in_a_row)
            self.say(gone.report())
            self.say(f"restarting {gone.name} in {delay:.1f}s (restart {in_a_row} in a row)")
            await asyncio.sleep(delay)
            try:
                self.respawn(gone.name)
            except Exception as exc:  # a failed restart ends the supervision
                self.say(f"could not restart {gone.name}: {exc}")
                return gone
            self.restarts[gone.name] = self.restarts.get(gone.name, 0) + 1
            self._started[gone.name] = time.monotonic()
            self.say(f"restarted {gone.name}")
