"""`make run`: start the stack, run the sample workflow, print how to call it, serve until ^C."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from ponder_devstack.demo import SAMPLE_TOPIC, format_workflow, run_sample
from ponder_devstack.stack import Stack
from ponder_devstack.temporal import TemporalSide


def _examples(gateway: str, http: str) -> str:
    body = json.dumps({"topic": SAMPLE_TOPIC})
    return (
        f"  grpcurl -plaintext {gateway} list\n"
        f"  grpcurl -plaintext -d '{body}' \\\n"
        f"    {gateway} ponder.workflow.v1.WorkflowService/RunReflectionWorkflow\n"
        f"  curl -s -H 'Content-Type: application/json' -d '{body}' \\\n"
        f"    http://{http}/v1/workflows/reflection\n"
        f"  open http://{http}/docs (Swagger UI) or http://{http}/redoc\n"
        f"  .venv/bin/ponder run research-reflection --watch -a {gateway} '{SAMPLE_TOPIC}'"
    )


async def _main(stack: Stack, temporal: TemporalSide | None) -> int:
    started = time.monotonic()
    if temporal is not None:
        print(f"starting the Temporal dev server on {temporal.server.address} ...")
        await temporal.start_server()
    stack.start()
    if temporal is not None:
        temporal.start_workers(stack.environment())
    print("starting embedding, research, reflection and gateway (logs in var/log/) ...")
    await stack.wait_ready()
    print(f"all four services SERVING after {time.monotonic() - started:.1f}s\n")
    gateway = next(s.address for s in stack.services if s.name == "gateway")
    workflow = await run_sample(gateway)
    print(format_workflow(workflow))
    print("\nservices:")
    for service in stack.services:
        print(f"  {service.name:<10} grpc://{service.address}")
    http = f"127.0.0.1:{stack.ports.gateway_http}"
    print(f"  {'rest':<10} http://{http} (OpenAPI at /openapi.json)")
    if temporal is not None:
        server = temporal.server
        print(f"  {'temporal':<10} grpc://{server.address} ({temporal.worker_count} workers)")
        print(f"  {'temporal UI':<10} {server.ui_url} (the sample is workflow {workflow.id})")
    print("\ntry it:\n" + _examples(gateway, http))
    print("\nserving; press Ctrl-C to drain and stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    return 0


def main() -> None:
    """Run the stack in the foreground until Ctrl-C, then drain every service. `--engine
    temporal` runs workflows on Temporal (dev server and workers started here)."""
    parser = argparse.ArgumentParser(prog="python -m ponder_devstack")
    parser.add_argument("--engine", choices=("local", "temporal"), default="local")
    engine = parser.parse_args().engine
    temporal = (
        TemporalSide.for_run(Path("var/data"), Path("var/log")) if engine == "temporal" else None
    )
    stack = Stack(extra_env=temporal.gateway_env() if temporal is not None else {})
    try:
        status = asyncio.run(_main(stack, temporal))
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    finally:
        print("stopping ...")
        codes = stack.stop()
        if temporal is not None:
            temporal.stop()
        print("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
    raise SystemExit(status)


if __name__ == "__main__":
    main()
