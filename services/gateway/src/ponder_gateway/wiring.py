"""The parts the gateway and the Temporal worker build alike from the settings: where the
workflow records, events and checkpoints live, the service stubs, the semantic cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from opentelemetry.metrics import Meter

from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_gateway.cache import RecentAnswers, WorkflowCache
from ponder_gateway.cache_signing import PayloadSigner, SigningKey
from ponder_gateway.library_version import LibraryVersions
from ponder_gateway.redis_outage import open_redis
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import SqliteWorkflowStore, WorkflowStore
from ponder_gateway.upstream import Upstreams
from ponder_gateway.workflows.checkpoints import Checkpoints, RedisCheckpoints, SqliteCheckpoints
from ponder_gateway.workflows.events import EventLog, RedisEventLog, SqliteEventLog
from ponder_runtime import ChannelFactory


logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Records:
    """Workflow records, their events and checkpoints: in Redis when configured (shared by
    replicas and workers), else in the SQLite file."""

    redis: aioredis.Redis | None
    store: WorkflowStore
    log: EventLog
    checkpoints: Checkpoints

    async def close(self) -> None:
        """Close all of them."""
        await self.checkpoints.close()
        await self.log.close()
        await self.store.close()
        if self.redis is not None:
            await self.redis.aclose()


def open_records(settings: GatewaySettings) -> Records:
    """The records' storage named by the settings."""
    if settings.redis_url:
        client = open_redis(settings.redis_url)
        return Records(
            client, RedisWorkflowStore(client), RedisEventLog(client), RedisCheckpoints(client)
        )
    path = settings.store_path
    return Records(
        None,
        SqliteWorkflowStore(path),
        SqliteEventLog(beside(path, "events")),
        SqliteCheckpoints(beside(path, "checkpoints")),
    )


def beside(path: Path, part: str) -> Path:
    """A SQLite file next to the records' one (its own file: its own writer thread, so the
    record and event writes of one process never wait on each other's lock)."""
    return path.with_name(f"{path.stem}-{part}{path.suffix}")


def upstreams(channels: ChannelFactory, settings: GatewaySettings) -> Upstreams:
    """Stubs of research, embedding and reflection."""
    return Upstreams(
        research=research_grpc.ResearchServiceStub(channels.channel(settings.research_addr)),
        embedding=embedding_grpc.EmbeddingServiceStub(channels.channel(settings.embedding_addr)),
        reflection=reflection_grpc.ReflectionServiceStub(
            channels.channel(settings.reflection_addr)
        ),
    )


def cache_signer(settings: GatewaySettings) -> PayloadSigner:
    """access: the cache signing key and the older keys still accepted (cache_signing.py)."""
    if settings.cache_signing_key is None:
        logger.warning(
            "PONDER_GATEWAY_CACHE_SIGNING_KEY is not set: cached results are signed with a key "
            "of this process only (not shared by replicas or workers, lost on restart)"
        )
        return PayloadSigner(SigningKey.ephemeral())
    return PayloadSigner(
        SigningKey.parse(settings.cache_signing_key.get_secret_value()),
        [SigningKey.parse(key.get_secret_value()) for key in settings.cache_verification_keys],
    )


def workflow_cache(up: Upstreams, settings: GatewaySettings, meter: Meter) -> WorkflowCache:
    """The semantic cache in front of workflows: signed entries, namespaced by the library's
    version for workflows that search it."""
    return WorkflowCache(
        up.embedding,
        threshold=settings.cache_similarity_threshold,
        ttl_seconds=settings.cache_ttl_seconds,
        timeout=settings.rank_timeout_seconds,
        recent=RecentAnswers(
            seconds=min(settings.cache_recent_seconds, settings.cache_ttl_seconds),
            max_entries=settings.cache_recent_entries,
        ),
        meter=meter,
        signer=cache_signer(settings),
        library=LibraryVersions(
            up.research,
            seconds=settings.cache_library_version_seconds,
            timeout=min(2.0, settings.rank_timeout_seconds),  # a lookup stays quick
        ),
    )
