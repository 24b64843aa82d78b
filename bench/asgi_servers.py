"""ASGI servers side by side in one run: which one should serve the REST facade.

Usage: .venv/bin/python bench/asgi_servers.py [--duration 10] [--rounds 1]

Every candidate serves the same minimal ASGI app (this module's `app`: it reads the request
body and answers a fixed JSON body of 2048 bytes) in its own subprocess, one worker, on
127.0.0.1. Each is loaded with `wrk -t2 -c10 -d<duration>s --latency`, POSTing a small JSON body
(after a short unmeasured warm-up). Candidates whose packages are missing are listed as skipped.
With `--rounds N` the candidates are run N times in turn and the medians are reported.
Prints a Markdown table: requests/s, p50, p99, and requests/s relative to uvicorn+h11.
Needs wrk (Debian package `wrk`); see `make bench-deps`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Receive, Scope, Send

from ponder_devstack.measure import WrkResult, lua_post, parse_wrk, version, wrk
from ponder_devstack.ports import free_port
from ponder_devstack.stack import reap


BENCH_DIR = Path(__file__).resolve().parent
BODY_BYTES = 2048
REQUEST_BODY = json.dumps({"topic": "How do language agents use self-reflection?"})


def _payload() -> bytes:
    """A JSON workflow-like document of exactly BODY_BYTES bytes."""

    def encode(text: str) -> bytes:
        doc = {
            "workflow": {
                "name": "workflows/7f0c2a4e",
                "state": "WORKFLOW_STATE_SUCCEEDED",
                "result": {"text": text, "citations": [{"title": "Reflexion", "url": "https://x"}]},
                "cache": {"hit": True, "similarity": 1.0},
            }
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    filler = "Language agents improve answers by critiquing their own drafts [1]. "
    room = BODY_BYTES - len(encode(""))
    body = encode((filler * (room // len(filler) + 1))[:room])
    assert len(body) == BODY_BYTES, len(body)
    return body


RESPONSE_BODY = _payload()
RESPONSE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(RESPONSE_BODY)).encode()),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The minimal ASGI app every server runs: drain the body, answer 2 KB of JSON."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS})
    await send({"type": "http.response.body", "body": RESPONSE_BODY})


# --- wrk ---------------------------------------------------------------------------------------


def run_wrk(url: str, script: Path, duration: float, connections: int = 10) -> WrkResult:
    """One wrk run: 2 threads, `connections` connections, latency distribution."""
    return parse_wrk(wrk(url, script, duration, connections))


# --- servers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """An ASGI server configuration: a label, the modules it needs, how to start it."""

    label: str
    needs: tuple[str, ...]
    server: str  # "uvicorn" or "granian"
    options: tuple[str, ...]

    def command(self, port: int) -> list[str]:
        """The server's command line for this module's `app` on `port`."""
        if self.server == "uvicorn":
            return [
                sys.executable, "-m", "uvicorn", "asgi_servers:app", "--app-dir", str(BENCH_DIR),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--lifespan", "on", "--no-access-log", "--log-level", "warning", *self.options,
            ]  # fmt: skip
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "--working-dir",
            str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--http", "1", "--no-ws", "--no-access-log", "--log-level", "warning",
            *self.options, "asgi_servers:app",
        ]  # fmt: skip

    def missing(self) -> list[str]:
        """Modules this candidate needs that cannot be imported."""
        return [name for name in self.needs if importlib.util.find_spec(name) is None]


BASELINE = "uvicorn + h11"
CANDIDATES = (
    Candidate(BASELINE, ("uvicorn", "h11"), "uvicorn", ("--http", "h11", "--loop", "asyncio")),
    Candidate(
        "uvicorn + httptools",
        ("uvicorn", "httptools"),
        "uvicorn",
        ("--http", "httptools", "--loop", "asyncio"),
    ),
    Candidate(
        "uvicorn + httptools + uvloop",
        ("uvicorn", "httptools", "uvloop"),
        "uvicorn",
        ("--http", "httptools", "--loop", "uvloop"),
    ),
    # zttp: a newer HTTP/1.1 + HTTP/2 parser uvicorn supports (`--http zttp`); not pinned.
    Candidate(
        "uvicorn + zttp + uvloop",
        ("uvicorn", "zttp", "uvloop"),
        "uvicorn",
        ("--http", "zttp", "--loop", "uvloop"),
    ),
    Candidate("granian (ASGI, asyncio loop)", ("granian",), "granian", ("--loop", "asyncio")),
    Candidate("granian (ASGI, uvloop)", ("granian", "uvloop"), "granian", ("--loop", "uvloop")),
    Candidate(
        "granian (ASGI, uvloop, single-threaded runtime)",
        ("granian", "uvloop"),
        "granian",
        ("--loop", "uvloop", "--runtime-mode", "st"),
    ),
)


def wait_http(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until the server answers a POST with 200; fail early if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("POST", "/", REQUEST_BODY, {"Content-Type": "application/json"})
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            if response.status == 200 and body == RESPONSE_BODY:
                return
            raise RuntimeError(f"unexpected answer {response.status}, {len(body)} bytes")
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no server on port {port} after {timeout:g}s") from None
            time.sleep(0.1)


@contextlib.contextmanager
def serving(candidate: Candidate, log: Path) -> Iterator[int]:
    """Start the candidate in a subprocess; yield its port; stop it."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            candidate.command(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_http(port, process)
        yield port
    finally:
        process.terminate()
        reap(process, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: `make bench-deps` (or apt-get install wrk)")
    ready = [c for c in CANDIDATES if not c.missing()]
    skipped = [c for c in CANDIDATES if c.missing()]
    results: dict[str, list[WrkResult]] = {c.label: [] for c in ready}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(lua_post(REQUEST_BODY))
        log = Path(tmp) / "servers.log"
        for _ in range(args.rounds):
            for candidate in ready:
                try:
                    with serving(candidate, log) as port:
                        url = f"http://127.0.0.1:{port}/"
                        if args.warmup > 0:
                            run_wrk(url, script, args.warmup)
                        results[candidate.label].append(run_wrk(url, script, args.duration))
                except (RuntimeError, TimeoutError) as exc:
                    tail = log.read_text(errors="replace")[-2000:]
                    sys.exit(f"{candidate.label}: {exc}\n{tail}")
    medians = {
        label: (
            statistics.median(r.requests_per_s for r in runs),
            statistics.median(r.p50_ms for r in runs),
            statistics.median(r.p99_ms for r in runs),
            sum(r.non_2xx + r.socket_errors for r in runs),
        )
        for label, runs in results.items()
    }
    base = medians[BASELINE][0] if BASELINE in medians else float("nan")
    print(
        f"wrk -t2 -c10 -d{args.duration:g}s --latency, POST, 2048-byte JSON answer; "
        f"{args.rounds} round(s), medians; {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; uvicorn {version('uvicorn')}, h11 {version('h11')}, "
        f"httptools {version('httptools')}, uvloop {version('uvloop')}, "
        f"granian {version('granian')}, zttp {version('zttp')}\n"
    )
    print("| server | requests/s | p50 (ms) | p99 (ms) | errors | req/s vs uvicorn + h11 |")
    print("|---|---|---|---|---|---|")
    for label, (rps, p50, p99, errors) in medians.items():
        print(f"| {label} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {errors} | {rps / base:.2f}x |")
    for candidate in skipped:
        print(f"| {candidate.label} | skipped: no {', '.join(candidate.missing())} | | | | |")


if __name__ == "__main__":
    main()
