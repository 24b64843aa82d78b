"""The REST facade against the seed's FastAPI design, and the gRPC path, side by side in one run.

Usage: .venv/bin/python bench/bench_rest.py [--duration 15] [--connections 10] [--rounds 1]
       [--answer-bytes -1] [--floor]

1. Starts the Ponder stack (four processes, as bench_gateway.py does) with the gateway's REST
   facade on a free port (PONDER_GATEWAY_HTTP_PORT), its rate limiter on but set high (every
   request still takes a token), and the reference (bench/rest_reference.py: FastAPI, the
   seed's Logging -> RateLimiter -> CORS stack as pure ASGI middleware, uvicorn + httptools,
   one worker) on another free port, with the same kind of limit.
2. Warms both: one request fills each cache; the next must be a 200 and a cache hit. The
   reference is started after Ponder's warm-up, padded to answer as many bytes as Ponder's REST
   facade does for the topic (`--answer-bytes`: -1, the default; 0 for its natural ~2.1 KB).
3. Loads, one after the other, for `--duration` seconds each after a short unmeasured warm-up,
   with `--connections` (10) connections or callers:
   - the reference, `POST /workflows/reflection` (wrk, 2 threads, a Lua script POSTing JSON);
   - Ponder REST, `POST /v1/workflows/reflection` (same wrk command);
   - Ponder gRPC, `RunReflectionWorkflow` from a separate process (grpc.aio, one channel and
     connection per caller).
   - with `--floor`, the REST facade alone (bench/rest_floor.py: the gateway's facade, uvicorn,
     encoder, access line, spans and metrics, in front of an invoker that answers a canned copy
     of Ponder's answer at once: no keys, workflow, cache lookup or record), answering a fresh
     copy each time (a new workflow's name and time around the same result), and the very same
     message (memoized whole): the ceiling of what the recorded cache-hit path can reach.
   Every request repeats the same topic: the cache-hit path (answer sizes are in the table).
   With `--rounds N` the three run N times in turn and the medians are reported.
Prints a Markdown table with the ratios (target: Ponder REST ≥ 1.5x the reference's requests/s,
p99 no worse, with replays on; issue 23: ≥ 1.0x with PONDER_GATEWAY_REPLAY_SECONDS=0), then
checks that every successful answer was a recorded workflow of its own: one SUCCEEDED record in
the gateway's store per answer (REST 200s from its access log, gRPC OKs, warm-ups included)
and no answer carrying another's workflow name (joined to a running twin). Exits 1 when the
REST facade is not reachable or does not answer 200 (after printing what it measured), 2 when
wrk is missing, 3 when that check fails.

Ponder's services run at their default log level (INFO, JSON lines to files), as they would in
production; the reference formats one JSON access line per request to /dev/null.
Also `--grpc-load ADDRESS`: the gRPC load generator itself (used by this script as a child
process; prints one JSON object).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts, files_in
from ponder_devstack.fake_openai import serve_fake_openai
from ponder_devstack.measure import lua_post, parse_wrk, version, wrk
from ponder_devstack.ports import free_port
from ponder_devstack.stack import reap


BENCH_DIR = Path(__file__).resolve().parent
TOPIC = "How do language agents use self-reflection to improve their answers?"
REFERENCE_PATH = "/workflows/reflection"
PONDER_PATH = "/v1/workflows/reflection"
REPLAY_HEADER = "x-ponder-replay-age"  # a repeat answered with the workflow that answered it
HIGH_RATE = "1000000"  # requests/s and burst: the limiter runs but never throttles


# --- wrk ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """One load run: requests/s, latencies in ms, and what went wrong."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers, socket errors, failed RPCs
    detail: str = ""
    ok: int = 0  # successful answers (200 / OK), warm-up included, when counted
    distinct: int = 0  # distinct workflow names among them (fewer: some were joined)


def wrk_script(directory: Path, *, names: bool = False) -> Path:
    """A wrk Lua script that POSTs the topic as JSON. With `names`, it also reads the workflow
    name of every 200 answer and prints, at the end, how many 200s there were and how many
    distinct names they carried (a joined request answers with the name of the workflow it
    joined: a repeat)."""
    script = directory / ("post_topic_names.lua" if names else "post_topic.lua")
    text = lua_post(json.dumps({"topic": TOPIC}))
    if names:
        text += _NAMES_LUA
    script.write_text(text)
    return script


# Per thread: the names answered (a table) and the 200 count; merged in done().
_NAMES_LUA = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  names = {}
  ok = 0
end
function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    local name = string.match(body, '"name":"(workflows/[^"]+)"')
    if name then names[name] = true end
  end
end
function done(summary, latency, requests)
  local seen, total = {}, 0
  local distinct = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("ok")
    for name, _ in pairs(thread:get("names")) do
      if not seen[name] then
        seen[name] = true
        distinct = distinct + 1
      end
    end
  end
  io.write(string.format("PONDER_ANSWERS ok=%d distinct=%d\\n", total, distinct))
end
"""


def run_wrk(url: str, script: Path, duration: float, connections: int) -> Load:
    """One wrk run: 2 threads, `connections` connections, latency distribution."""
    output = wrk(url, script, duration, connections)
    got = parse_wrk(output)
    answers = re.search(r"PONDER_ANSWERS ok=(\d+) distinct=(\d+)", output)
    return Load(
        requests_per_s=got.requests_per_s,
        p50_ms=got.p50_ms,
        p99_ms=got.p99_ms,
        requests=got.requests,
        errors=got.non_2xx + got.socket_errors,
        detail=f"non-2xx {got.non_2xx}, socket errors {got.socket_errors}",
        ok=int(answers[1]) if answers else 0,
        distinct=int(answers[2]) if answers else 0,
    )


# --- gRPC load (runs in its own process) -------------------------------------------------------


async def grpc_load(address: str, duration: float, warmup: float, callers: int) -> dict[str, Any]:
    """`callers` concurrent loops of RunReflectionWorkflow(TOPIC), each on its own channel
    (connection), for `warmup` then `duration` seconds; only the second part is measured."""
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(callers)
    ]
    request = pb.RunReflectionWorkflowRequest(topic=TOPIC)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    misses = 0
    names: set[str] = set()  # of every OK reply, warm-up included (a joined one repeats a name)
    ok = 0

    async def caller(stub: workflow_grpc.WorkflowServiceStub, until: float, keep: bool) -> None:
        nonlocal misses, ok
        while (started := time.perf_counter()) < until:
            try:
                call = stub.RunReflectionWorkflow(request, timeout=30)
                reply = await call
            except grpc.aio.AioRpcError as exc:
                failures[exc.code().name] = failures.get(exc.code().name, 0) + 1
                continue
            ok += 1
            names.add(reply.workflow.name)
            if keep:
                latencies.append(time.perf_counter() - started)
                if not reply.workflow.cache.hit:  # ran, unless it is a replay
                    metadata = await call.initial_metadata() or ()
                    misses += all(key != REPLAY_HEADER for key, _ in metadata)

    try:
        stubs = [workflow_grpc.WorkflowServiceStub(channel) for channel in channels]
        if warmup > 0:
            until = time.perf_counter() + warmup
            await asyncio.gather(*(caller(stub, until, keep=False) for stub in stubs))
        failures.clear()
        started = time.perf_counter()
        await asyncio.gather(*(caller(stub, started + duration, keep=True) for stub in stubs))
        elapsed = time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()
    values = np.asarray(latencies or [float("nan")]) * 1000
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "failures": failures,
        "cache_misses": misses,
        "ok": ok,
        "distinct": len(names),
    }


def run_grpc_load(address: str, duration: float, warmup: float, callers: int) -> Load:
    """The gRPC load from a child process (so it does not share this process's GIL)."""
    done = subprocess.run(
        [
            sys.executable, str(Path(__file__).resolve()), "--grpc-load", address,
            "--duration", str(duration), "--warmup", str(warmup), "--connections", str(callers),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    got = json.loads(done.stdout.strip().splitlines()[-1])
    failed = sum(got["failures"].values())
    return Load(
        requests_per_s=got["requests_per_s"],
        p50_ms=got["p50_ms"],
        p99_ms=got["p99_ms"],
        requests=got["requests"],
        errors=failed,
        detail=f"failed RPCs {got['failures'] or 0}, cache misses {got['cache_misses']}",
        ok=got["ok"],
        distinct=got["distinct"],
    )


# --- processes and checks ----------------------------------------------------------------------


def post(
    port: int, path: str, timeout: float = 60.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """POST {"topic": TOPIC} as JSON; the status and body (and the response's headers into
    `headers`, lower-case, when given)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST", path, json.dumps({"topic": TOPIC}), {"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        if headers is not None:
            headers.update((key.lower(), value) for key, value in response.getheaders())
        return response.status, response.read()
    finally:
        conn.close()


def wait_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Whether something accepts connections on the port within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def reference_server(port: int, log: Path, answer_bytes: int) -> Iterator[subprocess.Popen[bytes]]:
    """bench/rest_reference.py on `port`, answers of about `answer_bytes`; stopped on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "rest_reference.py"), "--port", str(port),
             "--log-file", os.devnull, "--rate", HIGH_RATE, "--burst", HIGH_RATE,
             "--answer-bytes", str(answer_bytes)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        reap(process, 10)


@contextlib.contextmanager
def floor_servers(root: Path, reply: bytes) -> Iterator[dict[str, int]]:
    """bench/rest_floor.py answering `reply`, a fresh copy each call ("floor") and the same
    message ("floor_same"), each on a free port (ready); stopped on exit."""
    (root / "reply.json").write_bytes(reply)
    ports: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        for name, extra in (("floor", []), ("floor_same", ["--same"])):
            ports[name] = free_port()
            out = stack.enter_context((root / f"{name}.log").open("wb"))
            process = subprocess.Popen(
                [sys.executable, str(BENCH_DIR / "rest_floor.py"), "--port", str(ports[name]),
                 "--reply", str(root / "reply.json"), *extra],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            stack.callback(reap, process, 10)
            stack.callback(process.terminate)
            if not wait_port(ports[name], 30, process):
                log = (root / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} did not start: {log}")
        yield ports


def warm_reference(port: int, process: subprocess.Popen[bytes], log: Path) -> int:
    """Fill the reference's cache; check the repeat is a 200 cache hit; the body size."""
    if not wait_port(port, 30, process):
        raise RuntimeError(f"reference did not start: {log.read_text(errors='replace')[-2000:]}")
    post(port, REFERENCE_PATH)
    status, body = post(port, REFERENCE_PATH)
    if status != 200 or not json.loads(body).get("cached"):
        raise RuntimeError(f"reference answered {status}: {body[:300]!r}")
    return len(body)


async def warm_grpc(address: str) -> tuple[int, int]:
    """Fill Ponder's cache through gRPC; check the repeat is a cache hit or a replay of the
    first answer. The reply's size as protobuf, and as JSON (what the REST facade would answer,
    about)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        request = pb.RunReflectionWorkflowRequest(topic=TOPIC)
        await stub.RunReflectionWorkflow(request, timeout=120)
        call = stub.RunReflectionWorkflow(request, timeout=30)
        reply = await call
        replayed = any(key == REPLAY_HEADER for key, _ in await call.initial_metadata() or ())
    if not (reply.workflow.cache.hit or replayed):
        raise RuntimeError(f"gRPC repeat was not a cache hit: {reply.workflow.cache}")
    as_json = json_format.MessageToJson(
        reply, indent=None, always_print_fields_with_no_presence=True
    )
    size: int = reply.ByteSize()
    return size, len(as_json.encode())


def warm_rest(port: int, timeout: float) -> tuple[int, str]:
    """Check the REST facade: a 200 JSON workflow that is a cache hit. (body size, "") when it
    is ready, (0, why not) otherwise."""
    if not wait_port(port, timeout):
        return 0, f"nothing listens on PONDER_GATEWAY_HTTP_PORT={port} after {timeout:g}s"
    try:
        post(port, PONDER_PATH)  # fills the cache if the gRPC warm-up has not
        headers: dict[str, str] = {}
        status, body = post(port, PONDER_PATH, headers=headers)
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"POST {PONDER_PATH} failed: {exc!r}"
    if status != 200:
        return 0, f"POST {PONDER_PATH} answered {status}: {body[:200]!r}"
    try:
        workflow = json.loads(body)["workflow"]
    except (ValueError, KeyError, TypeError):
        return 0, f"POST {PONDER_PATH}: not a {{'workflow': ...}} JSON: {body[:200]!r}"
    if not (workflow.get("cache", {}).get("hit") or f"grpc-metadata-{REPLAY_HEADER}" in headers):
        return 0, f"POST {PONDER_PATH}: repeat was not a cache hit: {workflow.get('cache')}"
    return len(body), ""


def median(runs: list[Load]) -> Load:
    """Medians of each number over rounds; errors summed."""
    return Load(
        requests_per_s=statistics.median(r.requests_per_s for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
        detail="; ".join(dict.fromkeys(r.detail for r in runs)),  # per round, when they differ
    )


@dataclass(frozen=True, slots=True)
class Recorded:
    """Whether every answer was a recorded workflow: the records in the gateway's store
    against the successful answers (REST: the 200s of the gateway's access log for the
    workflow route, which counts the answers a load generator stopped before reading; gRPC:
    every OK reply, warm-ups included; plus the two gRPC warm-up calls), and the answers that
    repeated another's workflow name (joined to a running twin instead of recorded)."""

    by_state: dict[str, int]
    rest_200: int
    grpc_ok: int
    joined: int

    @classmethod
    def read(cls, store: Path, log: Path, runs: list[Load]) -> Recorded:
        """Count them, after the stack has stopped."""
        with contextlib.closing(sqlite3.connect(store)) as db:
            rows = db.execute("SELECT state, count(*) FROM workflows GROUP BY state").fetchall()
        by_state = {
            pb.WorkflowState.Name(state).removeprefix("WORKFLOW_STATE_"): n for state, n in rows
        }
        rest_200 = 0
        for line in log.read_text(errors="replace").splitlines():
            if '"http request"' not in line:
                continue
            entry = json.loads(line)
            rest_200 += entry.get("http_path") == PONDER_PATH and entry.get("http_status") == 200
        grpc_ok = sum(run.ok for run in runs if "RPC" in run.detail)
        joined = sum(run.ok - run.distinct for run in runs)
        return cls(by_state, rest_200, grpc_ok, joined)

    @property
    def answers(self) -> int:
        """Successful answers: REST 200s, gRPC OKs and the two gRPC warm-up calls."""
        return self.rest_200 + self.grpc_ok + 2

    @property
    def ok(self) -> bool:
        """One SUCCEEDED record per successful answer, and none joined."""
        return self.by_state.get("SUCCEEDED", 0) == self.answers and self.joined == 0

    def report(self) -> str:
        """The check, in one paragraph."""
        states = ", ".join(f"{state} {n:,}" for state, n in sorted(self.by_state.items()))
        verdict = "PASS" if self.ok else "FAIL"
        return (
            f"Records: {states} (the store after the run). Successful answers: "
            f"{self.answers:,} (REST 200s {self.rest_200:,} from the access log, gRPC OK "
            f"{self.grpc_ok:,}, 2 gRPC warm-up calls); answers joined to another's workflow "
            f"(a repeated name): {self.joined}. One recorded workflow per answer: **{verdict}**"
        )


# --- the run -----------------------------------------------------------------------------------


def table(
    args: argparse.Namespace,
    results: dict[str, list[Load]],
    sizes: dict[str, int],
    rest_problem: str,
) -> str:
    """The Markdown table."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    lines = [
        f"wrk -t2 -c{args.connections} -d{args.duration:g}s --latency (POST, JSON body) and "
        f"{args.connections} grpc.aio callers; {args.rounds} round(s), medians; "
        f"{os.cpu_count()} CPUs; reference: FastAPI {version('fastapi')}, uvicorn "
        f"{version('uvicorn')} + httptools, loop auto ({loop})",
        "",
        "| path | requests/s | p50 (ms) | p99 (ms) | errors | answer (bytes; gRPC: protobuf) |",
        "|---|---|---|---|---|---|",
    ]
    labels = {
        "reference": f"reference (FastAPI, seed design): POST {REFERENCE_PATH}",
        "rest": f"Ponder REST: POST {PONDER_PATH}",
        "grpc": "Ponder gRPC: RunReflectionWorkflow",
        "floor": "facade floor: the REST facade alone, a fresh copy of the answer (rest_floor.py)",
        "floor_same": "facade floor: the REST facade alone, the very same answer (memoized)",
    }
    got = {name: median(runs) for name, runs in results.items() if runs}
    for name, label in labels.items():
        if name in got:
            r = got[name]
            lines.append(
                f"| {label} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                f"{r.errors} ({r.detail}) | {sizes.get(name, 0):,} |"
            )
        else:
            lines.append(f"| {label} | not measured: {rest_problem} | | | | |")
    ref = got["reference"]
    if "rest" in got:
        rest = got["rest"]
        lines += [
            f"| **Ponder REST / reference requests/s** (target ≥ 1.5) | "
            f"**{rest.requests_per_s / ref.requests_per_s:.2f}** | | | | |",
            f"| **Ponder REST / reference p99** (target ≤ 1.0) | "
            f"**{rest.p99_ms / ref.p99_ms:.2f}** | | | | |",
        ]
    for name in ("floor", "floor_same"):
        if name in got:
            lines.append(
                f"| {labels[name].split(':')[0]} ({'same' if name == 'floor_same' else 'fresh'}"
                f") / reference requests/s | {got[name].requests_per_s / ref.requests_per_s:.2f}"
                " | | | | |"
            )
    if "grpc" in got:
        grpc_load_ = got["grpc"]
        lines += [
            f"| Ponder gRPC / reference requests/s | "
            f"{grpc_load_.requests_per_s / ref.requests_per_s:.2f} | | | | |",
            f"| Ponder gRPC / reference p99 | {grpc_load_.p99_ms / ref.p99_ms:.2f} | | | | |",
        ]
    return "\n".join(lines)


def load_rounds(
    args: argparse.Namespace,
    targets: dict[str, str],
    scripts: dict[str, Path],
    grpc_address: str,
    *,
    results: dict[str, list[Load]],
    answered: list[Load],
) -> None:
    """`--rounds` times: each HTTP target, then the gRPC load; Ponder's runs, warm-ups
    included, also go to `answered`."""
    for _ in range(args.rounds):
        for name, url in targets.items():
            if args.warmup > 0:
                warm = run_wrk(url, scripts[name], args.warmup, args.connections)
                if name == "rest":
                    answered.append(warm)
            run = run_wrk(url, scripts[name], args.duration, args.connections)
            results[name].append(run)
            if name == "rest":
                answered.append(run)
        run = run_grpc_load(grpc_address, args.duration, args.warmup, args.connections)
        results["grpc"].append(run)
        answered.append(run)


async def bench(args: argparse.Namespace) -> int:
    """Run everything; print the table; the exit status."""
    fake = serve_fake_openai()
    results: dict[str, list[Load]] = {
        "reference": [], "rest": [], "grpc": [], "floor": [], "floor_same": []
    }  # fmt: skip
    answered: list[Load] = []  # Ponder's load runs, warm-ups included (their names counted)
    sizes: dict[str, int] = {}
    rest_problem = ""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        script = wrk_script(root)
        ports = StackPorts.free()
        # The gateway's REST port: PONDER_GATEWAY_HTTP_PORT (StackPorts may carry one already).
        http_port: int = getattr(ports, "gateway_http", 0) or free_port()
        reference_port = free_port()
        stack = Stack(
            ports=ports,
            log_dir=root,
            extra_env={
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": fake.base_url,
                "PONDER_GATEWAY_HTTP_PORT": str(http_port),
                "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": HIGH_RATE,
                "PONDER_GATEWAY_RATE_LIMIT_BURST": HIGH_RATE,
                **files_in(root),
            },
        )
        reference_log = root / "reference.log"
        stack.start()
        try:
            await stack.wait_ready(timeout=120)
            await stack.wait_for_log("research", "library indexed")  # no background work left
            gateway = next(s for s in stack.services if s.name == "gateway")
            sizes["grpc"], grpc_json = await warm_grpc(gateway.address)
            sizes["rest"], rest_problem = warm_rest(http_port, args.http_timeout)
            # The reference answers as many bytes as Ponder's REST facade (or its JSON, when
            # the facade is not up), unless --answer-bytes says otherwise.
            answer_bytes = args.answer_bytes
            if answer_bytes < 0:
                answer_bytes = sizes["rest"] or grpc_json
            floor = b""
            if args.floor and not rest_problem:
                _, floor = post(http_port, PONDER_PATH)  # a cache hit's answer, to be canned
            floors: contextlib.AbstractContextManager[dict[str, int]] = (
                floor_servers(root, floor) if floor else contextlib.nullcontext({})
            )
            with (
                reference_server(reference_port, reference_log, answer_bytes) as reference,
                floors as floor_ports,
            ):
                sizes["reference"] = warm_reference(reference_port, reference, reference_log)
                targets = {
                    "reference": f"http://127.0.0.1:{reference_port}{REFERENCE_PATH}",
                    "rest": f"http://127.0.0.1:{http_port}{PONDER_PATH}",
                }
                if rest_problem:
                    del targets["rest"]
                scripts = {"reference": script, "rest": wrk_script(root, names=True)}
                for name, port in floor_ports.items():
                    targets[name] = f"http://127.0.0.1:{port}{PONDER_PATH}"
                    scripts[name] = script
                    sizes[name] = len(floor)
                load_rounds(
                    args, targets, scripts, gateway.address, results=results, answered=answered
                )
        finally:
            codes = stack.stop()
            fake.close()
            if any(code not in (0, None) for code in codes.values()):
                print(f"stack exit codes: {codes}", file=sys.stderr)
        recorded = Recorded.read(root / "workflows.sqlite3", root / "gateway.log", answered)
    print(table(args, results, sizes, rest_problem))
    print()
    print(recorded.report())
    if rest_problem:
        print(f"\nPonder REST facade not ready: {rest_problem}", file=sys.stderr)
        return 1
    return 0 if recorded.ok else 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per load run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--http-timeout", type=float, default=15.0, help="seconds to wait for the REST port"
    )
    parser.add_argument(
        "--answer-bytes",
        type=int,
        default=-1,
        help="size of the reference's answers: -1 (default) the size of Ponder's REST answer, "
        "0 the reference's natural size (about 2.1 KB)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also load the REST facade alone (bench/rest_floor.py) answering a canned copy "
        "of Ponder's answer: the ceiling of what the recorded path can reach",
    )
    parser.add_argument("--grpc-load", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grpc_load:
        got = asyncio.run(grpc_load(args.grpc_load, args.duration, args.warmup, args.connections))
        print(json.dumps(got))
        return
    if shutil.which("wrk") is None:
        print("wrk not found: `make bench-deps` (or apt-get install wrk)", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
