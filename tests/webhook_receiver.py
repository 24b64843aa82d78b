"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 (port 0, or a given port)
in a thread, verifying each delivery's signature the way the README's snippet does (its own
HMAC code, not the gateway's), failing the first deliveries on request."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify_signature(header: str, body: bytes, secret: str, tolerance: float = 300) -> bool:
    """The README's verification: t and v1 from the header, HMAC-SHA256 of "<t>.<body>",
    compared in constant time, and the timestamp no older than `tolerance` seconds."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamp = next((v for k, v in parts if k == "t"), "")
    signatures = [v for k, v in parts if k == "v1"]
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


@dataclass
class Delivery:
    """One request the receiver got, and what it answered."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers `fail_first` requests with `fail_status`, then 204; keeps every delivery."""

    secret: str
    fail_first: int = 0
    fail_status: int = 500
    deliveries: list[Delivery] = field(default_factory=list)
    port: int = 0
    tls: ssl.SSLContext | None = None  # serve https with this context
    server_names: list[str | None] = field(default_factory=list)  # SNI of each TLS handshake
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        """Listen on 127.0.0.1 (the given port, or a free one)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signature = self.headers.get("Ponder-Signature", "")
                verified = verify_signature(signature, body, receiver.secret)
                failing = len(receiver.deliveries) < receiver.fail_first
                status = receiver.fail_status if failing else (204 if verified else 401)
                receiver.deliveries.append(Delivery(dict(self.headers), body, verified, status))
                self.send_response(status)
                if 300 <= status < 400:  # a redirect the gateway must not follow
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        if self.tls is not None:
            self.tls.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        """Where to send webhooks."""
        return f"http://127.0.0.1:{self.port}/hooks/ponder?source=test"

    @property
    def accepted(self) -> list[Delivery]:
        """The deliveries answered 2xx."""
        return [d for d in self.deliveries if 200 <= d.status < 300]

    def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
