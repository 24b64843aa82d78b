"""What the benchmarks measure the same way: wrk runs, percentiles, memory, versions."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run reports (latencies in milliseconds)."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def parse_wrk(output: str) -> WrkResult:
    """Parse `wrk --latency` output."""

    def latency(percent: str) -> float:
        found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
        if found is None:
            raise ValueError(f"no {percent}% latency in wrk output:\n{output}")
        return float(found[1]) * _UNITS[found[2]]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if rate is None or count is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(rate[1]),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(count[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def lua_post(body: str) -> str:
    """A wrk script that POSTs `body` as JSON."""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{body}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


def wrk(url: str, script: Path, duration: float, connections: int) -> str:
    """One wrk run: 2 threads, `connections` connections, latency distribution; its output."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    done = subprocess.run(
        [*command, "-s", str(script), url], capture_output=True, text=True, check=True
    )
    return done.stdout


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def ms(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) in milliseconds of `values` in seconds, interpolated
    between ranks as numpy.percentile's default ("linear") does."""
    ordered = sorted(values)
    position = q / 100 * (len(ordered) - 1)
    below = int(position)
    low, high = ordered[below] * 1000, ordered[min(below + 1, len(ordered) - 1)] * 1000
    share = position - below
    return high - (high - low) * (1 - share) if share >= 0.5 else low + (high - low) * share


def rss_mib(pid: int | None = None, *, peak: bool = False) -> float:
    """Resident set size of a process (this one by default) in MiB: now (VmRSS), or its peak
    (VmHWM)."""
    field = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def version(package: str) -> str:
    """Installed version of a distribution, or "-"."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"
