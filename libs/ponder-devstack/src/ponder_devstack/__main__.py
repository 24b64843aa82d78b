"""`make run`: start the stack, run the sample workflow, print how to call it, serve until ^C."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from ponder_devstack.demo import SAMPLE_TOPIC, format_workflow, run_sample
from ponder_devstack.stack import Stack


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


async def _main(stack: Stack) -> int:
    started = time.monotonic()
    stack.start()
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
    print("\ntry it:\n" + _examples(gateway, http))
    print("\nserving; press Ctrl-C to drain and stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    return 0


def main() -> None:
    """Run the stack in the foreground until Ctrl-C, then drain every service."""
    stack = Stack()
    try:
        status = asyncio.run(_main(stack))
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    finally:
        print("stopping ...")
        codes = stack.stop()
        print("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
    raise SystemExit(status)


if __name__ == "__main__":
    main()
