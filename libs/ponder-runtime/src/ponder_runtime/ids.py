"""Random identifiers from the operating system's CSPRNG, read in chunks."""

from __future__ import annotations

import os
import uuid


class RandomIds:
    """Random ids from `os.urandom`, read `chunk` bytes at a time: one system call per chunk
    instead of one per id (on a busy event loop, each such call also hands the GIL to any
    thread that waits for it, and waits to get it back). The bytes are the same CSPRNG's;
    each is used once, and a forked child reads its own."""

    def __init__(self, *, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._buffer = b""
        self._at = 0
        self._pid = os.getpid()

    def take(self, size: int) -> bytes:
        """`size` random bytes, never handed out before."""
        if self._at + size > len(self._buffer) or os.getpid() != self._pid:
            self._buffer = os.urandom(max(self._chunk, size))
            self._at = 0
            self._pid = os.getpid()
        start, self._at = self._at, self._at + size
        return self._buffer[start : self._at]

    def hex(self, size: int = 16) -> str:
        """`size` random bytes as lower-case hex (e.g. a request id)."""
        return self.take(size).hex()

    def uuid4(self) -> str:
        """A random (version 4) UUID in its canonical text form."""
        return str(uuid.UUID(bytes=self.take(16), version=4))
