"""The gateway as a ServiceModule: channels to the services it orchestrates, readiness."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence

import grpc
import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.library.v1 import library_service_pb2 as library_pb2
from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.access import AccessControl, Anonymous, Buckets, TokenBuckets
from ponder_gateway.budgets import DailyBudgets, MemoryLedger, WorkflowBudgets
from ponder_gateway.cache_invalidation import ReplicaInvalidation
from ponder_gateway.coalescing import (
    FallbackRunningIndex,
    MemoryRunningIndex,
    RedisRunningIndex,
)
from ponder_gateway.principals import current, read_keys
from ponder_gateway.redis_outage import FallbackBuckets, OutageTolerantStore, open_redis
from ponder_gateway.redis_state import RedisTokenBuckets, RedisWorkflowStore
from ponder_gateway.replay import ReplayMemo
from ponder_gateway.rest import build_facade
from ponder_gateway.retention import Retention
from ponder_gateway.servicer import WorkflowServicer
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.spend_ledger import RedisLedger
from ponder_gateway.store import SqliteWorkflowStore, WorkflowStore
from ponder_gateway.upstream import Upstreams
from ponder_gateway.webhooks.config import deliverer, webhook_targets
from ponder_gateway.webhooks.notifier import Notifier
from ponder_gateway.webhooks.sender import HttpxSender
from ponder_gateway.wiring import beside, workflow_cache
from ponder_gateway.workflows.admission import Admission
from ponder_gateway.workflows.engine import Engine
from ponder_gateway.workflows.engine_local import LocalEngine
from ponder_gateway.workflows.engine_temporal import TemporalEngine
from ponder_gateway.workflows.events import EventLog, RedisEventLog, SqliteEventLog
from ponder_rest.server import HttpLimits, HttpServer
from ponder_runtime import ChannelFactory, Telemetry, wait_until_serving
from ponder_runtime.interceptors import GuardInterceptor
from ponder_runtime.internal_auth import TENANT_HEADER
from ponder_runtime.local import HandlerRegistry
from ponder_runtime.proxy import ServiceProxy


logger = logging.getLogger(__name__)

# Open to everyone: load balancers probe health, and grpcurl needs reflection to list.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# How long to wait between "still waiting for <service>" log lines during start-up.
_READINESS_LOG_INTERVAL_SECONDS = 10.0


# With shared records, a workflow not updated for this long was left by a stopped replica:
# longer than research + rank + reflection timeouts together.
_STALE_SECONDS = 900.0


def _buckets(rate: float, burst: int, client: aioredis.Redis | None) -> Buckets | None:
    """Rate limits (per caller, or per tenant): shared through Redis when configured, else in
    memory; None when `rate` is 0."""
    if rate <= 0:
        return None
    local = TokenBuckets(rate=rate, burst=burst)
    if client is not None:  # this replica's own buckets while Redis is away
        return FallbackBuckets(RedisTokenBuckets(client, rate=rate, burst=burst), local)
    return local


class GatewayModule:
    """Serves WorkflowService; SERVING once research, embedding and reflection are."""

    def __init__(self, settings: GatewaySettings, telemetry: Telemetry) -> None:
        self._settings = settings
        self._channels = ChannelFactory(
            telemetry,
            max_message_bytes=settings.max_message_bytes,
            internal_token=settings.internal_token_value,  # access: internal calls
        )
        self._targets = {
            research_pb2.DESCRIPTOR.services_by_name[
                "ResearchService"
            ].full_name: self._channels.channel(settings.research_addr),
            embedding_pb2.DESCRIPTOR.services_by_name[
                "EmbeddingService"
            ].full_name: self._channels.channel(settings.embedding_addr),
            reflection_pb2.DESCRIPTOR.services_by_name[
                "ReflectionService"
            ].full_name: self._channels.channel(settings.reflection_addr),
        }
        channels = list(self._targets.values())
        upstreams = Upstreams(
            research=research_grpc.ResearchServiceStub(channels[0]),
            embedding=embedding_grpc.EmbeddingServiceStub(channels[1]),
            reflection=reflection_grpc.ReflectionServiceStub(channels[2]),
        )
        redis_client = open_redis(settings.redis_url) if settings.redis_url else None
        self._redis = redis_client
        store: WorkflowStore = (
            OutageTolerantStore(RedisWorkflowStore(redis_client))
            if redis_client is not None
            else SqliteWorkflowStore(settings.store_path)
        )
        log: EventLog = (
            RedisEventLog(redis_client)
            if redis_client is not None
            else SqliteEventLog(beside(settings.store_path, "events"))
        )
        meter = telemetry.meter("ponder_gateway")
        cache = workflow_cache(upstreams, settings, meter)
        # An InvalidateCache through this gateway empties every replica's first level.
        self._invalidation = ReplicaInvalidation(cache.forget_recent, redis_client)
        admission = Admission(
            max_running=settings.max_running_workflows,
            max_queued=settings.max_queued_workflows,
            meter=meter,
        )
        # Completion webhooks, delivered by this gateway on either engine. With shared records
        # (Redis, or Temporal workers) a sweep takes over deliveries a stopped replica left.
        shared = redis_client is not None or settings.engine == "temporal"
        self._webhook_sender = HttpxSender()
        self.notifier = Notifier(
            deliverer(
                settings,
                store,
                self._webhook_sender,
                meter,
                telemetry.tracer("ponder_gateway"),
            ),
            store,
            sweep_seconds=settings.webhook_sweep_seconds if shared else None,
            takeover_seconds=settings.webhook_timeout_seconds + 30.0 if shared else 0.0,
        )
        self.engine: Engine
        if settings.engine == "temporal":
            self.engine = TemporalEngine(
                functools.partial(
                    Client.connect,
                    settings.temporal_address,
                    namespace=settings.temporal_namespace,
                    # the request's trace goes on in the workers (and the services they call)
                    interceptors=[TracingInterceptor(telemetry.tracer("ponder_gateway"))],
                ),
                store,
                log,
                settings,
                admission=admission,
                notifier=self.notifier,
                answers=(upstreams, cache),  # the gateway looks workflows up itself
            )
        else:
            self.engine = LocalEngine(
                upstreams,
                cache,
                store,
                log,
                settings,
                admission=admission,
                tracer=telemetry.inner_tracer("ponder_gateway"),  # None: spans unrecorded
                notifier=self.notifier,
            )
        self._retention = Retention(
            store,
            log,
            keep=settings.retention,
            every=settings.retention_sweep_seconds,
            batch=settings.retention_batch,
            meter=meter,
        )
        self._grace = settings.shutdown_grace_seconds
        self._access = AccessControl(
            read_keys(settings.api_keys_file, settings.api_key_hashes),
            anonymous=Anonymous(settings.anonymous_tenant, settings.anonymous_scopes)
            if settings.allow_anonymous
            else None,
            buckets=_buckets(
                settings.rate_limit_per_second, settings.rate_limit_burst, redis_client
            ),
            tenant_buckets=_buckets(
                settings.tenant_rate_limit_per_second,
                settings.tenant_rate_limit_burst,
                redis_client,
            ),
            meter=meter,
        )
        self._servicer = WorkflowServicer(
            self.engine,
            ReplayMemo(
                seconds=settings.replay_seconds, max_entries=settings.replay_entries, meter=meter
            ),
            WorkflowBudgets(
                per_tenant=settings.max_workflows_per_tenant,
                per_key=settings.max_workflows_per_key,
            ),
            scope_mode=settings.cache_scope,
            daily=DailyBudgets(
                RedisLedger(redis_client) if redis_client is not None else MemoryLedger(),
                meter=meter,
            ),
            running=FallbackRunningIndex(
                RedisRunningIndex(redis_client, ttl_seconds=_STALE_SECONDS), MemoryRunningIndex()
            )
            if redis_client is not None
            else MemoryRunningIndex(),
            webhooks=webhook_targets(settings),
        )
        self._proxied = dict(self._targets) if settings.expose_internal_services else {}
        # LibraryService is public: research serves it for the caller's tenant (stated by the
        # gateway on the internal channel; a caller's own x-ponder-tenant is dropped).
        self._library = {
            library_pb2.DESCRIPTOR.services_by_name["LibraryService"].full_name: self._targets[
                research_pb2.DESCRIPTOR.services_by_name["ResearchService"].full_name
            ]
        }
        self._telemetry = telemetry
        self.http: HttpServer | None = None

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """API keys, scopes and rate limits on every RPC but health and reflection."""
        return [GuardInterceptor(self._access, open_prefixes=OPEN_SERVICES)]

    @property
    def service_names(self) -> Sequence[str]:
        """WorkflowService and LibraryService, plus the internal services when exposed."""
        workflow = workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name
        return [workflow, *self._library, *self._proxied]

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer, and the proxy of the internal services when they are exposed."""
        workflow_grpc.add_WorkflowServiceServicer_to_server(self._servicer, server)
        server.add_generic_rpc_handlers(
            [ServiceProxy(self._library, metadata=lambda: ((TENANT_HEADER, current().tenant),))]
        )
        if self._proxied:
            invalidate = "/{}/InvalidateCache".format(
                embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name
            )
            server.add_generic_rpc_handlers(
                [ServiceProxy(self._proxied, after={invalidate: self._invalidation.invalidated})]
            )

    async def listen(self, handlers: HandlerRegistry) -> None:
        """Open the REST facade's port (unless turned off); it calls the methods in-process."""
        if self._settings.http_port < 0:
            return
        app = build_facade(self._settings, self.service_names, handlers, self._telemetry)
        settings = self._settings
        limits = HttpLimits(
            header_timeout_seconds=settings.http_header_timeout_seconds,
            max_header_bytes=settings.http_max_header_bytes,
            max_connections=settings.http_max_connections,
            keep_alive_seconds=settings.http_keep_alive_seconds,
        )
        self.http = HttpServer(
            app, settings.host, settings.http_port, grace_seconds=self._grace, limits=limits
        )
        await self.http.start()

    async def drain(self, grace: float) -> None:
        """Stop the REST facade: no new requests; in-flight ones and streams get `grace`."""
        if self.http is not None:
            await self.http.stop()

    async def start(self) -> None:
        """Resolve workflows a previous process left unfinished, then wait until every
        downstream service reports SERVING."""
        await self.engine.start(stale_after=_STALE_SECONDS if self._redis else 0.0)
        await self.notifier.start()  # deliveries a stopped gateway left due
        self._retention.start()
        self._invalidation.start()
        await asyncio.gather(
            *(self._wait_for(name, channel) for name, channel in self._targets.items())
        )

    async def invalidations_heard(self) -> None:
        """Wait until this replica hears the other replicas' cache invalidations (with
        Redis; after `start`)."""
        await self._invalidation.subscribed()

    async def _wait_for(self, service: str, channel: grpc.aio.Channel) -> None:
        while True:
            try:
                await wait_until_serving(channel, service, timeout=_READINESS_LOG_INTERVAL_SECONDS)
            except TimeoutError as exc:
                logger.info("waiting for a dependency", extra={"detail": str(exc)})
                continue
            logger.info("dependency ready", extra={"service": service})
            return

    async def close(self) -> None:
        """Drain running workflows (recording the ones cut short), then close the channels."""
        await self._retention.stop()
        await self._invalidation.stop()
        await self.engine.drain(self._grace)
        await self._webhook_sender.close()
        if self._redis is not None:
            await self._redis.aclose()
        await self._channels.close()
