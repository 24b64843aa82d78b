"""Running the `ponder` console script as a user would: in a pipe, or in a pseudo-terminal."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path


PONDER = Path(sys.executable).parent / "ponder"
ANSI_ESCAPE = "\x1b["


@dataclass(frozen=True)
class Ran:
    """What one `ponder` command did."""

    code: int
    out: str
    err: str


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    return {**env, **(extra or {})}


def ponder(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Ran:
    """Run `ponder ARGS` with its output in pipes (not a terminal)."""
    assert PONDER.exists(), f"{PONDER} is missing: `make install` installs clients/python"
    done = subprocess.run(
        [str(PONDER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_env(env),
    )
    return Ran(done.returncode, done.stdout, done.stderr)


async def ponder_async(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Ran:
    """`ponder` from a test whose servers run on this event loop."""
    process = await asyncio.create_subprocess_exec(
        str(PONDER),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(env),
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def ponder_in_pty(*args: str, columns: int = 120, timeout: float = 120) -> tuple[int, str]:
    """Run `ponder ARGS` in a pseudo-terminal of `columns` columns; its exit status and all it
    wrote (escape sequences included)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [str(PONDER), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env({"TERM": "xterm-256color", "COLUMNS": str(columns)}),
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"ponder {args} ran past {timeout}s: {b''.join(chunks)!r}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return process.wait(timeout=10), b"".join(chunks).decode("utf-8", "replace")
