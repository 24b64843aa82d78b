"""`python -m ponder_gateway.worker`: a Temporal worker running Ponder workflows (engine
`temporal`). Same settings as the gateway (PONDER_TEMPORAL_*, the service addresses, the
records' PONDER_GATEWAY_REDIS_URL or SQLite file). Run as many as the load needs; kill any
of them at any time: its workflows go on on the others."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker

from ponder_gateway.settings import GatewaySettings
from ponder_gateway.wiring import open_records, upstreams, workflow_cache
from ponder_gateway.workflows.temporal_activities import WorkerActivities
from ponder_gateway.workflows.temporal_workflow import PonderWorkflow
from ponder_runtime import ChannelFactory, SettingsError, configure_telemetry, load_settings
from ponder_runtime.logs import configure_logging


logger = logging.getLogger("ponder_gateway.worker")


async def run_worker(settings: GatewaySettings) -> None:
    """Poll the task queue until SIGTERM/SIGINT, then finish or hand back what runs."""
    telemetry = configure_telemetry(settings)
    channels = ChannelFactory(
        telemetry,
        max_message_bytes=settings.max_message_bytes,
        internal_token=settings.internal_token_value,  # access: internal calls
    )
    up = upstreams(channels, settings)
    records = open_records(settings)
    activities = WorkerActivities(
        up,
        workflow_cache(up, settings, telemetry.meter("ponder_worker")),
        settings,
        store=records.store,
        log=records.log,
        checkpoints=records.checkpoints,
    )
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        # activities run in the trace of the request that started the workflow
        interceptors=[TracingInterceptor(telemetry.tracer("ponder_worker"))],
    )
    worker = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[PonderWorkflow],
        activities=activities.all(),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        # On SIGTERM running activities get the grace period; the rest retry elsewhere.
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    health = await _health_server(settings)
    async with worker:
        if health is not None:
            await health.servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "worker polling",
            extra={
                "task_queue": settings.temporal_task_queue,
                "temporal": settings.temporal_address,
            },
        )
        await stop.wait()
        logger.info("shutdown signal received")
        if health is not None:
            await health.servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    if health is not None:
        await health.server.stop(0)
    await records.close()
    await channels.close()


@dataclass
class _Health:
    server: grpc.aio.Server
    servicer: health.aio.HealthServicer


async def _health_server(settings: GatewaySettings) -> _Health | None:
    """grpc.health.v1 on the worker's health port (NOT_SERVING until it polls)."""
    if settings.worker_health_port < 0:
        return None
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"{settings.host}:{settings.worker_health_port}")
    await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    return _Health(server, servicer)


def main() -> None:
    """Run a worker; exit 2 on bad settings, 1 when it fails."""
    try:
        settings = load_settings(GatewaySettings)
    except SettingsError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("worker", level=settings.log_level, fmt=settings.log_format)
    try:
        asyncio.run(run_worker(settings))
    except Exception:
        logger.exception("worker failed")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
