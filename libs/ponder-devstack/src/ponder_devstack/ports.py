"""Before starting: which of the stack's ports are already taken, and by which process."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    """A currently free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding `host:port` fails because something listens there (SO_REUSEADDR, as
    the services bind: connections of an earlier run in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _listening_inodes(port: int, proc: Path) -> set[str]:
    """Socket inodes listening on `port` (any address), from /proc/net/tcp and tcp6."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(inode)
    return inodes


def port_owner(port: int, proc: Path = Path("/proc")) -> str | None:
    """'pid 123 (python -m ponder_gateway)' for the process listening on `port`, when /proc
    shows it (Linux, a process of ours); else None."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    command = " ".join(a.decode(errors="replace") for a in argv if a)
                    return f"pid {entry.name} ({command[:120]})"
    return None


def taken_ports(ports: Mapping[str, int], host: str = "127.0.0.1") -> list[str]:
    """One line per port in `ports` (what it is for -> number) that is already taken."""
    problems = []
    for purpose, port in ports.items():
        if is_taken(port, host):
            owner = port_owner(port)
            by = f" by {owner}" if owner else " (by a process this user cannot see)"
            problems.append(f"port {port} ({purpose}) is already in use{by}")
    return problems
