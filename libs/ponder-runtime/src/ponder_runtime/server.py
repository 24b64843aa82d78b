"""Build, run and drain a grpc.aio server with health, reflection, tracing and error mapping.

The story of a service process:
  load settings -> configure logs and tracing -> build the service -> bind and start the server
  (health NOT_SERVING) -> service.start() loads its dependencies -> health SERVING -> wait for
  SIGTERM/SIGINT -> health NOT_SERVING -> stop(grace) lets in-flight RPCs finish ->
  service.close() -> exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ponder_runtime.access_log import AccessLogInterceptor
from ponder_runtime.deadlines import DeadlineInterceptor
from ponder_runtime.interceptors import ErrorMappingInterceptor
from ponder_runtime.local import HandlerRegistry
from ponder_runtime.logs import configure_logging
from ponder_runtime.reflection import enable_reflection
from ponder_runtime.runtime_metrics import observe_runtime
from ponder_runtime.settings import ServiceSettings, SettingsError, load_settings
from ponder_runtime.tasks import cancel_and_wait
from ponder_runtime.telemetry import Telemetry, configure_telemetry


logger = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ServiceModule(Protocol):
    """What a service plugs into the shared server."""

    @property
    def service_names(self) -> Sequence[str]:
        """Full names of the gRPC services registered (for health and reflection)."""
        ...

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicers to `server`."""
        ...

    async def start(self) -> None:
        """Make dependencies ready (load models, wait for upstreams); the service reports
        SERVING once this returns."""
        ...

    async def close(self) -> None:
        """Release resources after the server stopped."""
        ...


# Optional hooks a module may define (looked up with getattr):
#   interceptors() -> list[grpc.aio.ServerInterceptor]: run inside the error mapping.
#   async listen(handlers: HandlerRegistry): open extra listeners (the gateway's HTTP port)
#       once the gRPC server started; `handlers` runs the server's own methods in-process.
#   async drain(grace: float): stop those listeners gracefully, alongside the gRPC drain.


class ServiceServer:
    """A started-on-demand grpc.aio server for one ServiceModule."""

    def __init__(self, settings: ServiceSettings, service: ServiceModule, telemetry: Telemetry):
        self.settings = settings
        self.service = service
        self.telemetry = telemetry
        self.health = health.aio.HealthServicer()
        # A module may add its own interceptors (auth, rate limits); they run inside the error
        # mapping, so the PonderErrors they raise become statuses with details.
        extra = getattr(service, "interceptors", None)
        inner = [ErrorMappingInterceptor(), *(extra() if extra is not None else ())]
        # Inside the span and outside the error mapping: each RPC's access line (with its final
        # status and trace id) and its deadline, which calls made below it respect.
        calls = [AccessLogInterceptor(), DeadlineInterceptor()]
        self.server = grpc.aio.server(
            interceptors=[*telemetry.server_interceptors(), *calls, *inner],
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.max_metadata_size", settings.max_metadata_bytes),
                ("grpc.absolute_max_metadata_size", settings.max_metadata_bytes),
                (
                    "grpc.server_handshake_timeout_ms",
                    round(settings.grpc_handshake_timeout_seconds * 1000),
                ),
                (
                    "grpc.max_connection_idle_ms",
                    round(settings.grpc_max_connection_idle_seconds * 1000),
                ),
            ],
        )
        # Records what is registered so that the same handlers, behind the same guard and
        # error mapping, can be called in-process (the REST facade does).
        self.handlers = HandlerRegistry(self.server, inner)
        self.port = 0
        self._health_names = ["", *service.service_names]

    async def start(self) -> int:
        """Bind, start serving (health NOT_SERVING), then return the bound port."""
        observe_runtime(self.telemetry.meter("ponder.runtime"), asyncio.get_running_loop())
        # The registry stands in for the server (it registers there too).
        self.service.register(cast(grpc.aio.Server, self.handlers))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.handlers)
        if self.settings.server_reflection:
            enable_reflection([*self.service.service_names, health.SERVICE_NAME], self.server)
        self.port = self.server.add_insecure_port(self.settings.address)
        await self._set_all(NOT_SERVING)
        await self.server.start()
        logger.info(
            "listening",
            extra={"address": f"{self.settings.host}:{self.port}", "services": self._health_names},
        )
        listen = getattr(self.service, "listen", None)
        if listen is not None:
            await listen(self.handlers)
        return self.port

    async def mark_ready(self) -> None:
        """Run the service's start-up, then report SERVING."""
        await self.service.start()
        await self._set_all(SERVING)
        logger.info("serving", extra={"port": self.port})

    async def stop(self, grace: float | None = None) -> None:
        """Drain: NOT_SERVING, let in-flight RPCs finish within `grace`, then close resources."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        logger.info("draining", extra={"grace_seconds": grace})
        drain = getattr(self.service, "drain", None)
        await asyncio.gather(self.server.stop(grace), *([drain(grace)] if drain else []))
        await self.service.close()
        await asyncio.to_thread(self.telemetry.shutdown)  # the OTLP flush blocks its caller
        logger.info("stopped")

    async def _set_all(self, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        for name in self._health_names:
            await self.health.set(name, status)


S = TypeVar("S", bound=ServiceSettings)


async def serve(
    settings: S, build: Callable[[S, Telemetry], ServiceModule], telemetry: Telemetry
) -> None:
    """Build the service inside the event loop, run it until SIGTERM or SIGINT, then drain."""
    server = ServiceServer(settings, build(settings, telemetry), telemetry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    ready = asyncio.create_task(server.mark_ready())
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if ready in done and ready.exception() is not None:
        stopping.cancel()
        await server.stop(0)
        raise RuntimeError("service failed to start") from ready.exception()
    await stopping
    await cancel_and_wait(ready)
    logger.info("shutdown signal received")
    await server.stop()


def run_service(settings_cls: type[S], build: Callable[[S, Telemetry], ServiceModule]) -> int:
    """Entry point of a service process: returns the exit status (0 after a clean drain,
    2 for bad settings, 1 when the service failed to start)."""
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        print(f"{settings_cls.service_name}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    telemetry = configure_telemetry(settings)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
            runner.run(serve(settings, build, telemetry))
    except Exception:
        logger.exception("service failed")
        return 1
    return 0


def _loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for (it must be installed), else asyncio's."""
    if kind != "uvloop":
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
