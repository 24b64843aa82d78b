"""The semantic cache in front of workflows, kept by the embedding service: namespaces by
workflow shape, scope and library version; every lookup says what it decided and why."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import grpc
from cachetools import TLRUCache
from google.protobuf import duration_pb2
from opentelemetry.metrics import Meter

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.cache_signing import PayloadSigner, SignatureError, SigningKey
from ponder_gateway.library_version import LibraryVersionError, LibraryVersions
from ponder_gateway.metrics import (
    CACHE_LOOKUP_DURATION,
    CACHE_LOOKUPS,
    CACHE_REASON_CATEGORY,
    CACHE_REJECTED,
    CACHE_RESULT,
    CACHE_VERDICT,
    no_op_meter,
)
from ponder_gateway.parameters import RunParameters
from ponder_gateway.principals import DEFAULT_TENANT


logger = logging.getLogger(__name__)

PAYLOAD_TYPE = "ponder.workflow.v1.Workflow"


# CACHE_VERDICT_REJECTED -> "rejected", ...
_VERDICT_NAMES = {
    value.number: value.name.removeprefix("CACHE_VERDICT_").lower()
    for value in workflow_pb2.CacheVerdict.DESCRIPTOR.values
}


@dataclass(frozen=True, slots=True)
class CachedWorkflow:
    """A cache hit: the earlier workflow and how similar its topic was."""

    workflow: workflow_pb2.Workflow
    similarity: float
    verdict: workflow_pb2.CacheVerdict = workflow_pb2.CACHE_VERDICT_EXACT
    reason: str = "the same text"
    expires_in: float = math.inf  # seconds its cache entry had left when this was learnt


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """What a lookup decided: the cached workflow on a hit (None on a miss), the best candidate
    considered and the verdict with its reason."""

    workflow: workflow_pb2.Workflow | None
    similarity: float
    namespace: str
    candidate_topic: str = ""
    verdict: workflow_pb2.CacheVerdict = workflow_pb2.CACHE_VERDICT_EMPTY
    reason: str = ""
    category: str = ""
    expires_in: float = math.inf  # on a hit: seconds until the cache entry expires

    @property
    def hit(self) -> bool:
        """Whether a cached workflow answers."""
        return self.workflow is not None

    def verdict_name(self) -> str:
        """ "rejected", "accepted", ... (the enum name's tail, lower case)."""
        return _VERDICT_NAMES[self.verdict]

    def explain(self) -> str:
        """The verdict and its reason, e.g. 'rejected: polarity differs ("fail")'."""
        return f"{self.verdict_name()}: {self.reason}" if self.reason else self.verdict_name()

    def info(self) -> workflow_pb2.CacheInfo:
        """The workflow's `cache` field."""
        return workflow_pb2.CacheInfo(
            hit=self.hit,
            similarity=self.similarity,
            source_workflow=self.workflow.name if self.workflow is not None else "",
            namespace=self.namespace,
            candidate_topic=self.candidate_topic,
            verdict=self.verdict,
            reason=self.reason,
            reason_category=self.category,
        )


def _as_is(timeout: float) -> float:
    return timeout


class CacheUnavailableError(Exception):
    """The embedding service could not answer; the message says how."""


class CacheTimeoutError(CacheUnavailableError):
    """The embedding service did not answer a lookup in the time it had (it may be slow
    rather than down)."""


@functools.lru_cache(maxsize=1024)  # a pure function of its (hashable) arguments
def namespace(params: RunParameters, library_version: str = "") -> str:
    """One namespace per workflow kind and result-shaping parameters (not the cache policy),
    scope (`global` or the caller's key hash) and, for workflows that search the local library,
    its version: a cached answer is only reused for a request that would have produced the
    same answer, for the same tenant when scoped, from the same library."""
    shape = (
        f"{sorted(params.sources)}|{params.max_sources}|{params.max_iterations}|"
        f"{params.score_threshold:g}"
    )
    digest = hashlib.sha256(shape.encode()).hexdigest()[:12]
    kind = workflow_pb2.WorkflowKind.Name(params.kind).removeprefix("WORKFLOW_KIND_").lower()
    space = f"workflow/{kind}/v1/{digest}/{params.cache_scope}"
    return f"{space}/library-{library_version}" if library_version else space


def uses_library(params: RunParameters) -> bool:
    """Whether the workflow searches the local library (its answers depend on its version)."""
    return document_pb2.SOURCE_KIND_LIBRARY in params.sources


VERDICTS: dict[int, workflow_pb2.CacheVerdict] = {
    embedding_pb2.CACHE_VERDICT_EXACT: workflow_pb2.CACHE_VERDICT_EXACT,
    embedding_pb2.CACHE_VERDICT_ACCEPTED: workflow_pb2.CACHE_VERDICT_ACCEPTED,
    embedding_pb2.CACHE_VERDICT_REJECTED: workflow_pb2.CACHE_VERDICT_REJECTED,
    embedding_pb2.CACHE_VERDICT_BELOW_THRESHOLD: workflow_pb2.CACHE_VERDICT_BELOW_THRESHOLD,
    embedding_pb2.CACHE_VERDICT_EMPTY: workflow_pb2.CACHE_VERDICT_EMPTY,
}


class RecentAnswers:
    """First-level cache in the gateway process: exact repeats of a topic (same namespace:
    kind, shaping parameters, scope and library version) answered without the round trip to
    the embedding service, with the verdict the embedding service gave. An answer is kept for
    `seconds` at most, and never past its cache entry's own expiry (the TTL fixed when it was
    stored); `forget_all` drops everything (an InvalidateCache through this gateway). What it
    cannot see — an InvalidateCache on another replica or sent to the embedding service
    directly, a REFRESH run elsewhere — it serves at most `seconds` late. Bounded in size
    (a cachetools TLRUCache: per-entry expiry, the least recently used goes first when
    full)."""

    def __init__(
        self, *, seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._on = seconds > 0 and max_entries > 0
        self._seconds = seconds
        self._entries: TLRUCache[tuple[str, str], CachedWorkflow] = TLRUCache(
            max(max_entries, 1), ttu=self._until, timer=clock
        )

    def _until(self, _key: tuple[str, str], answer: CachedWorkflow, now: float) -> float:
        """When an answer kept `now` goes: after `seconds`, or when its entry expires."""
        return now + min(self._seconds, answer.expires_in)

    def get(self, space: str, topic: str) -> CachedWorkflow | None:
        """The answer kept for exactly this topic, if still fresh."""
        return self._entries.get((space, topic))

    def put(self, space: str, topic: str, answer: CachedWorkflow) -> None:
        """Keep an answer (unless its entry has expired); nothing when turned off."""
        if self._on and answer.expires_in > 0:
            self._entries[(space, topic)] = answer

    def forget_all(self) -> None:
        """Drop every answer (the cache was invalidated through this gateway)."""
        self._entries.clear()


class WorkflowCache:
    """Lookups and stores of finished workflows by topic, through EmbeddingService, with the
    exact repeats of recent topics answered in-process."""

    def __init__(
        self,
        stub: embedding_grpc.EmbeddingServiceStub,
        *,
        threshold: float,
        ttl_seconds: float,
        timeout: float,
        recent: RecentAnswers | None = None,
        meter: Meter | None = None,
        signer: PayloadSigner | None = None,
        library: LibraryVersions | None = None,
    ) -> None:
        self._stub = stub
        self._library = library
        meter = meter or no_op_meter()
        # access: results are signed on store and verified on lookup (cache_signing.py).
        self._signer = signer or PayloadSigner(SigningKey.ephemeral())
        self._rejected = meter.create_counter(
            CACHE_REJECTED,
            unit="{entry}",
            description="Cached results refused (a miss) because their signature did not verify.",
        )
        self._lookups = meter.create_counter(
            CACHE_LOOKUPS, unit="{lookup}", description="Cache lookups by result."
        )
        self._lookup_duration = meter.create_histogram(
            CACHE_LOOKUP_DURATION, unit="s", description="Cache lookup time by result."
        )
        self._threshold = threshold
        self._ttl_seconds = ttl_seconds
        self._timeout = timeout
        self._recent = recent or RecentAnswers(seconds=0, max_entries=0)

    async def namespace(self, params: RunParameters, tenant: str = "") -> str:
        """The namespace of a workflow, with the library's version when it searches the
        library (for `tenant`: with its uploaded libraries, and never shared with another
        tenant's); raises CacheUnavailableError when that version cannot be learnt."""
        if self._library is None or not uses_library(params):
            return namespace(params)
        try:
            return namespace(params, await self._library.current(tenant or DEFAULT_TENANT))
        except LibraryVersionError as exc:
            raise CacheUnavailableError(f"library version unknown ({exc})") from exc

    async def remembers(self, topic: str, params: RunParameters, tenant: str = "") -> bool:
        """Whether an exact repeat of `topic` is answered in-process (RecentAnswers) right now;
        False when the library version cannot be learnt."""
        try:
            space = await self.namespace(params, tenant)
        except CacheUnavailableError:
            return False
        return self._recent.get(space, topic) is not None

    async def recall(
        self, topic: str, params: RunParameters, tenant: str = ""
    ) -> CacheLookup | None:
        """The lookup of an exact repeat of `topic` answered in-process (RecentAnswers), counted
        as a hit like any lookup; None when the first level holds no answer (nothing counted:
        the lookup is still to be made) or the library version cannot be learnt."""
        started = time.perf_counter()
        try:
            space = await self.namespace(params, tenant)
        except CacheUnavailableError:
            return None
        found = self._recalled(space, topic)
        if found is not None:
            self._count("hit", started, found)
        return found

    def _recalled(self, space: str, topic: str) -> CacheLookup | None:
        """The first level's answer to `topic` in `space`, as a lookup (None: not held)."""
        recent = self._recent.get(space, topic)
        if recent is None:
            return None
        return CacheLookup(
            recent.workflow,
            recent.similarity,
            space,
            recent.workflow.topic,
            recent.verdict,
            recent.reason,
        )

    async def lookup(
        self,
        topic: str,
        params: RunParameters,
        tenant: str = "",
        *,
        cap: Callable[[float], float] = _as_is,
    ) -> CacheLookup:
        """The cached workflow for an equivalent topic (for `tenant`), or a miss that says why;
        `cap` shortens the configured timeout (to what the caller's deadline leaves)."""
        started = time.perf_counter()
        try:
            space = await self.namespace(params, tenant)
            recalled = self._recalled(space, topic)
            found = recalled or await self._lookup(space, topic, cap(self._timeout))
        except CacheUnavailableError:
            self._count("error", started)
            raise
        self._count("hit" if found.hit else "miss", started, found)
        if found.workflow is not None and recalled is None:
            self._recent.put(
                space,
                topic,
                CachedWorkflow(
                    found.workflow,
                    found.similarity,
                    found.verdict,
                    found.reason,
                    found.expires_in,
                ),
            )
        return found

    def _count(self, result: str, started: float, found: CacheLookup | None = None) -> None:
        attributes = {CACHE_RESULT: result}
        self._lookup_duration.record(time.perf_counter() - started, attributes)
        if found is not None:
            attributes |= {
                CACHE_VERDICT: found.verdict_name(),
                CACHE_REASON_CATEGORY: found.category,
            }
        self._lookups.add(1, attributes)

    async def _lookup(self, space: str, topic: str, timeout: float) -> CacheLookup:
        try:
            reply = await self._stub.LookupCache(
                embedding_pb2.LookupCacheRequest(
                    namespace=space, text=topic, similarity_threshold=self._threshold
                ),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            late = exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            error = CacheTimeoutError if late else CacheUnavailableError
            raise error(f"{exc.code().name}: {exc.details()}") from exc
        found = CacheLookup(
            None,
            reply.similarity,
            space,
            reply.candidate_text,
            VERDICTS.get(reply.verdict, workflow_pb2.CACHE_VERDICT_UNSPECIFIED),
            reply.reason,
            reply.reason_category,
        )
        if not reply.hit or reply.entry.payload_type != PAYLOAD_TYPE:
            return found
        entry = reply.entry
        try:
            body = self._signer.open(space, entry.text, entry.payload_type, entry.payload)
        except SignatureError as exc:
            self._rejected.add(1)
            logger.warning(
                "cached result rejected: served as a miss",
                extra={"namespace": space, "cache_key": entry.key, "reason": str(exc)},
            )
            return replace(
                found,
                verdict=workflow_pb2.CACHE_VERDICT_REJECTED,
                reason=f"signature does not verify ({exc})",
                category="signature",
            )
        expires_in = math.inf
        if entry.HasField("expire_time"):
            expires_in = entry.expire_time.ToNanoseconds() / 1e9 - time.time()
        return replace(
            found, workflow=workflow_pb2.Workflow.FromString(body), expires_in=expires_in
        )

    async def store(
        self,
        workflow: workflow_pb2.Workflow,
        params: RunParameters,
        *,
        cap: Callable[[float], float] = _as_is,
    ) -> None:
        """Keep a finished workflow under its topic (`cap` as for lookup)."""
        ttl = duration_pb2.Duration()
        ttl.FromNanoseconds(int(self._ttl_seconds * 1e9))
        space = await self.namespace(params, workflow.tenant)
        try:
            await self._stub.StoreCache(
                embedding_pb2.StoreCacheRequest(
                    namespace=space,
                    text=workflow.topic,
                    payload=self._signer.seal(
                        space, workflow.topic, PAYLOAD_TYPE, workflow.SerializeToString()
                    ),
                    payload_type=PAYLOAD_TYPE,
                    ttl=ttl,
                ),
                timeout=cap(self._timeout),
            )
        except grpc.aio.AioRpcError as exc:
            raise CacheUnavailableError(f"{exc.code().name}: {exc.details()}") from exc
        self._keep(space, workflow, self._ttl_seconds)

    async def stored_elsewhere(
        self, workflow: workflow_pb2.Workflow, params: RunParameters, stored_at: float
    ) -> None:
        """A workflow another process (a Temporal worker) ran and kept in the cache from
        `stored_at` (Unix seconds, when its store began), seen ended here: its exact repeats
        are answered from this process's first level too, as after `store`, never past the
        entry's expiry."""
        try:
            space = await self.namespace(params, workflow.tenant)
        except CacheUnavailableError:
            return  # not known here: the workers ask the embedding service
        self._keep(space, workflow, self._ttl_seconds - max(0.0, time.time() - stored_at))

    def _keep(self, space: str, workflow: workflow_pb2.Workflow, expires_in: float) -> None:
        """The first level answers `workflow`'s exact repeats (while its entry lasts)."""
        kept = workflow_pb2.Workflow()
        kept.CopyFrom(workflow)
        self._recent.put(space, workflow.topic, CachedWorkflow(kept, 1.0, expires_in=expires_in))

    def forget_recent(self) -> None:
        """Drop the first level's answers (after an InvalidateCache through this gateway)."""
        self._recent.forget_all()
