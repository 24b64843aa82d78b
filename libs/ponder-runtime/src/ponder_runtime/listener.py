"""A listening TCP socket for an asyncio HTTP server we start ourselves (the REST facade, the
fakes)."""

from __future__ import annotations

import socket


def tcp_listener(host: str, port: int, *, backlog: int) -> socket.socket:
    """A non-blocking socket listening on `host:port` (an IPv6 host with or without brackets;
    port 0: any free one), SO_REUSEADDR set."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # says TCP, and accepted sockets inherit it; with Nagle on, every response after the first
    # on a keep-alive connection waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
