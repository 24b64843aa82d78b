"""Random identifiers from the operating system's CSPRNG, read in chunks."""

from __future__ import annotations

import os


# RFC 4122 version 4: the version nibble is 4; the variant's two bits (10) replace the top two
# bits of the nibble after it (so its hex digit is one of 8, 9, a, b).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


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
        """A random (version 4) UUID in its canonical text form: what
        str(uuid.UUID(bytes=..., version=4)) makes of the same bytes, without building the
        UUID object (a third of the time)."""
        text = self.take(16).hex()
        return (
            f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:]}"
        )
