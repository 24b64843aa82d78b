"""The embedding service as a ServiceModule: loads the model and the cache, then serves."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence

import grpc
from openai import AsyncOpenAI
from opentelemetry.metrics import Meter

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_embedding.batching import BatchStats, MicroBatcher
from ponder_embedding.cache.backend import CacheBackend
from ponder_embedding.cache.core import SemanticCache
from ponder_embedding.cache.index import SearchOptions
from ponder_embedding.cache.sqlite_backend import SqliteBackend
from ponder_embedding.cache.verifier import Verifier
from ponder_embedding.cache.verifier.llm import LlmJudge
from ponder_embedding.engine import Engine, VectorMemo, embed_texts
from ponder_embedding.model import EmbeddingModel, ModelOptions
from ponder_embedding.servicer import EmbeddingServicer
from ponder_embedding.settings import EmbeddingSettings
from ponder_runtime import Telemetry
from ponder_runtime.internal_auth import internal_interceptors
from ponder_runtime.metrics import (
    EMBEDDING_BATCH_TEXTS,
    EMBEDDING_ENCODE_DURATION,
    EMBEDDING_QUEUE_WAIT,
)
from ponder_runtime.tasks import cancel_and_wait


logger = logging.getLogger(__name__)


class BatchObserver:
    """Each model batch: a debug log line and the batch metrics (texts per batch, how long
    the oldest text waited, encode time)."""

    def __init__(self, meter: Meter) -> None:
        self._texts = meter.create_histogram(
            EMBEDDING_BATCH_TEXTS, unit="{text}", description="Texts per model batch."
        )
        self._wait = meter.create_histogram(
            EMBEDDING_QUEUE_WAIT, unit="s", description="Queue wait of a batch's oldest text."
        )
        self._encode = meter.create_histogram(
            EMBEDDING_ENCODE_DURATION, unit="s", description="Model time per batch."
        )

    def __call__(self, stats: BatchStats) -> None:
        """Record one batch."""
        self._texts.record(stats.size)
        self._wait.record(stats.queue_wait_seconds)
        self._encode.record(stats.encode_seconds)
        logger.debug(
            "batch encoded",
            extra={
                "batch_size": stats.size,
                "callers": stats.callers,
                "queue_wait_ms": round(stats.queue_wait_seconds * 1000, 3),
                "encode_ms": round(stats.encode_seconds * 1000, 3),
            },
        )


async def open_backend(settings: EmbeddingSettings) -> CacheBackend:
    """Redis when PONDER_CACHE_REDIS_URL is set (shared by replicas), else the SQLite file."""
    if settings.cache_redis_url:
        from ponder_embedding.cache.redis_backend import RedisBackend

        backend = RedisBackend(settings.cache_redis_url)
        await backend.connect()
        return backend
    return SqliteBackend(settings.cache_path)


def index_search_options(settings: EmbeddingSettings) -> SearchOptions:
    """How the cache's vector index is searched: the settings where given, else its defaults."""
    default = SearchOptions()
    return SearchOptions(
        expansion=settings.cache_index_expansion_search or default.expansion,
        threads=(
            default.threads
            if settings.cache_index_search_threads is None
            else settings.cache_index_search_threads
        ),
    )


def llm_judge(settings: EmbeddingSettings) -> LlmJudge | None:
    """The LLM verifier when PONDER_CACHE_LLM_VERIFIER_MODEL names a model, else None."""
    if not settings.cache_llm_verifier_model or not settings.cache_verify:
        return None
    key = settings.openai_api_key
    client = AsyncOpenAI(
        api_key=key.get_secret_value() if key else "unset",
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=settings.cache_llm_verifier_timeout_seconds,
    )
    return LlmJudge(
        client,
        settings.cache_llm_verifier_model,
        timeout=settings.cache_llm_verifier_timeout_seconds,
    )


class EmbeddingModule:
    """Serves EmbeddingService; NOT_SERVING until the model and the cache are loaded."""

    def __init__(self, settings: EmbeddingSettings, telemetry: Telemetry) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._servicer = EmbeddingServicer(settings, telemetry.meter("ponder_embedding"))
        self._maintenance: asyncio.Task[None] | None = None

    @property
    def service_names(self) -> Sequence[str]:
        """EmbeddingService's full name."""
        return [embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name]

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """access: every method but health and reflection needs the internal token."""
        return internal_interceptors(self._settings.internal_token_value, "embedding")

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer."""
        embedding_grpc.add_EmbeddingServiceServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """Load the model (seconds: torch import plus weights) and the cache."""
        settings = self._settings
        model = await EmbeddingModel.load(
            ModelOptions(
                model=settings.model,
                device=settings.device,
                backend=settings.backend,
                onnx_dir=settings.onnx_dir,
                threads=settings.threads,
            )
        )
        batcher = MicroBatcher(
            model.encode,
            dimensions=model.dimensions,
            max_batch_size=settings.batch_max_size,
            max_wait_seconds=settings.batch_max_wait_ms / 1000,
            on_batch=BatchObserver(self._telemetry.meter("ponder_embedding")),
            tracer=self._telemetry.tracer("ponder_embedding"),
        )
        memo = VectorMemo(settings.memo_entries)
        cache = SemanticCache(
            await open_backend(settings),
            functools.partial(embed_texts, memo, batcher, normalized=True),
            dimensions=model.dimensions,
            max_entries=settings.cache_max_entries,
            default_ttl_seconds=settings.cache_default_ttl_seconds,
            default_threshold=settings.cache_similarity_threshold,
            verifier=Verifier() if settings.cache_verify else None,
            judge=llm_judge(settings),
            index_dir=settings.cache_index_folder(),
            index_search=index_search_options(settings),
        )
        await cache.start()
        self._maintenance = asyncio.create_task(
            cache.run_maintenance(settings.cache_maintenance_seconds)
        )
        self._servicer.engine = Engine(model, batcher, memo, cache)

    async def close(self) -> None:
        """Stop maintenance, flush the cache, stop the batcher and the model's thread."""
        await cancel_and_wait(self._maintenance)
        engine = self._servicer.engine
        if engine is not None:
            await engine.cache.close()
            await engine.batcher.close()
            engine.model.close()
