"""`make run`: start the stack, run the sample workflow, print how to call it, then supervise
the services until ^C (a service that exits is reported and stops the stack, or with
`--restart` is started again with backoff). `--engine temporal` runs workflows on Temporal: its
dev server and workers start here and are supervised like the services."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path

from ponder_devstack.demo import SAMPLE_TOPIC, format_workflow, run_sample
from ponder_devstack.ports import taken_ports
from ponder_devstack.stack import Stack, StackPorts
from ponder_devstack.supervisor import Child, Supervisor
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


async def _serve(
    stack: Stack, supervisor: Supervisor, temporal: TemporalSide | None, *, sample: bool
) -> None:
    """Run the sample workflow and print the addresses (a service exit interrupts that)."""
    gateway = stack.service("gateway").address
    sample_id = None
    if sample:
        workflow = await run_sample(gateway)
        sample_id = workflow.id
        print(format_workflow(workflow))
    print("\nservices:")
    for service in stack.services:
        print(f"  {service.name:<10} grpc://{service.address}")
    http = f"127.0.0.1:{stack.ports.gateway_http}"
    print(f"  {'rest':<10} http://{http} (OpenAPI at /openapi.json)")
    if temporal is not None:
        server = temporal.server
        print(f"  {'temporal':<10} grpc://{server.address} ({temporal.worker_count} workers)")
        sample_note = f" (the sample is workflow {sample_id})" if sample_id else ""
        print(f"  {'temporal UI':<10} {server.ui_url}{sample_note}")
    print("\ntry it:\n" + _examples(gateway, http))
    restart = " (a service that exits is restarted)" if supervisor.respawn else ""
    print(f"\nserving{restart}; press Ctrl-C to drain and stop.", flush=True)


def _respawn(stack: Stack, temporal: TemporalSide | None, name: str) -> None:
    """Start a child that exited again: a service, the Temporal dev server or a worker."""
    if temporal is not None and name not in {s.name for s in stack.services}:
        temporal.restart(name)
    else:
        stack.restart(name)


async def _main(
    stack: Stack,
    temporal: TemporalSide | None = None,
    *,
    restart: bool = False,
    sample: bool = True,
) -> int:
    ports = stack.port_map()
    if temporal is not None:
        ports.update(temporal.ports())
    taken = taken_ports(ports)
    if taken:
        print("error: cannot start the stack:", file=sys.stderr)
        for line in taken:
            print(f"  {line}", file=sys.stderr)
        print("stop that process, or choose other ports (see --help)", file=sys.stderr)
        return 2
    started = time.monotonic()
    if temporal is not None:
        print(f"starting the Temporal dev server on {temporal.server.address} ...", flush=True)
        await temporal.start_server()
    stack.start()
    children: list[Child] = list(stack.services)
    if temporal is not None:
        temporal.start_workers(stack.environment())
        children += temporal.children()
    names = ", ".join(c.name for c in children)
    print(f"starting {names} (logs in {stack.log_dir}/) ...", flush=True)
    supervisor = Supervisor(
        children, respawn=(lambda name: _respawn(stack, temporal, name)) if restart else None
    )
    watcher = asyncio.create_task(supervisor.watch())
    ready = asyncio.create_task(stack.wait_ready())
    await asyncio.wait([watcher, ready], return_when=asyncio.FIRST_COMPLETED)
    if not ready.done() or ready.exception() is not None or supervisor.exited():
        ready.cancel()
        gone = watcher.result() if watcher.done() else supervisor.exited()
        watcher.cancel()
        if gone is not None:
            print(f"error: {gone.report()}", file=sys.stderr)
            return 1
        await ready  # raises why the stack is not ready
    print(f"all {len(stack.services)} services SERVING after {time.monotonic() - started:.1f}s\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(_serve(stack, supervisor, temporal, sample=sample))
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([watcher, stopping, serving], return_when=asyncio.FIRST_COMPLETED)
    if done == {serving} and serving.exception() is None:  # started: serve until ^C or an exit
        await asyncio.wait([watcher, stopping], return_when=asyncio.FIRST_COMPLETED)
    serving.cancel()
    stopping.cancel()
    if watcher.done():
        print(f"error: {watcher.result().report()}", file=sys.stderr)
        print("stopping the other services", file=sys.stderr)
        return 1
    watcher.cancel()
    if serving.done() and not serving.cancelled() and serving.exception() is not None:
        print(f"error: the sample workflow failed: {serving.exception()}", file=sys.stderr)
        return 1
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ponder-devstack", description=__doc__)
    parser.add_argument(
        "--restart",
        action="store_true",
        help="restart a service that exits (with backoff) instead of stopping the stack",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "temporal"),
        default="local",
        help="what runs workflows: asyncio tasks in the gateway, or Temporal (its dev server "
        "on --temporal-port, Web UI on that port + 1000, and two workers)",
    )
    parser.add_argument("--temporal-port", type=int, default=7233, metavar="N")
    parser.add_argument("--no-sample", action="store_true", help="skip the sample workflow")
    parser.add_argument("--log-dir", type=Path, default=Path("var/log"))
    for port in dataclasses.fields(StackPorts):
        parser.add_argument(
            f"--{port.name.replace('_', '-')}-port", type=int, default=port.default, metavar="N"
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the stack in the foreground until Ctrl-C or a service exits, then drain it."""
    args = _arguments(argv)
    ports = StackPorts(
        **{p.name: getattr(args, f"{p.name}_port") for p in dataclasses.fields(StackPorts)}
    )
    temporal = (
        TemporalSide.for_run(Path("var/data"), args.log_dir, port=args.temporal_port)
        if args.engine == "temporal"
        else None
    )
    stack = Stack(
        ports=ports,
        log_dir=args.log_dir,
        extra_env=temporal.gateway_env() if temporal is not None else {},
    )
    try:
        status = asyncio.run(
            _main(stack, temporal, restart=args.restart, sample=not args.no_sample)
        )
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    finally:
        if any(s.process is not None for s in stack.services):
            print("stopping ...")
            codes = stack.stop()
            print("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
        if temporal is not None:
            temporal.stop()
    raise SystemExit(status)


if __name__ == "__main__":
    main()
