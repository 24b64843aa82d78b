"""The semantic cache as the gateway uses it: a verified paraphrase is served, the opposite
question is refused and the workflow runs saying why; per-tenant and per-key scopes keep
tenants apart; a library change invalidates the answers made from the library; an
InvalidateCache through a gateway empties its first-level cache, and through Redis every
replica's."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.access import hash_key
from ponder_gateway.principals import Scope
from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, load_settings
from tests.conftest import InProcessStack, start_service
from tests.support.gateways import UnwaitingGateway, gateway
from tests.support.keys import bearer, key_line, keys_file


USE = pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_USE)


async def _reflect(
    stub: workflow_grpc.WorkflowServiceStub, topic: str, metadata: tuple[tuple[str, str], ...] = ()
) -> pb.Workflow:
    reply = await stub.RunReflectionWorkflow(
        pb.RunReflectionWorkflowRequest(topic=topic, parameters=USE),
        timeout=60,
        metadata=metadata,
    )
    workflow: pb.Workflow = reply.workflow
    return workflow


async def test_gateway_serves_a_verified_hit_and_refuses_the_opposite(gateway_channel):
    """A paraphrase is answered from the cache (ACCEPTED, with the candidate's topic); the
    negated question finds the same candidate, is refused, runs, and its cache field and
    cache_lookup step say why."""
    stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
    tag = uuid.uuid4().hex[:6]
    topic = f"Why does self-consistency improve reasoning in agent {tag}?"
    first = await _reflect(stub, topic)
    assert not first.cache.hit
    paraphrase = await _reflect(
        stub, f"What makes self consistency improve reasoning in agent {tag}"
    )
    assert paraphrase.cache.hit
    assert paraphrase.cache.verdict == pb.CACHE_VERDICT_ACCEPTED
    assert paraphrase.cache.candidate_topic == topic
    assert paraphrase.cache.source_workflow == first.name
    assert paraphrase.result.text == first.result.text
    opposite = await _reflect(
        stub, f"Why does self-consistency fail to improve reasoning in agent {tag}?"
    )
    assert not opposite.cache.hit
    assert opposite.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert opposite.cache.verdict == pb.CACHE_VERDICT_REJECTED
    assert opposite.cache.candidate_topic == topic
    assert opposite.cache.reason == 'polarity differs ("fail")'
    assert opposite.cache.reason_category == "polarity"
    assert opposite.cache.similarity > 0.8
    assert opposite.steps[0].message == 'miss (rejected: polarity differs ("fail"))'
    assert "reflect" in [step.name for step in opposite.steps]


async def test_per_key_scope_keeps_tenants_apart(stack: InProcessStack, tmp_path):
    """With PONDER_GATEWAY_CACHE_SCOPE=per-key the same topic asked with another API key runs
    again (its namespace carries the other key's hash), while the first key's repeat hits."""
    keys = ("pk-tenant-one-0001", "pk-tenant-two-0002")
    server = await gateway(
        stack,
        tmp_path,
        allow_anonymous=False,
        api_key_hashes=[hash_key(k) for k in keys],
        cache_scope="per-key",
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            topic = f"How do generative agents share memory, tenant case {uuid.uuid4().hex[:6]}?"
            first = await _reflect(stub, topic, bearer(keys[0]))
            repeat = await _reflect(stub, f" {topic}", bearer(keys[0]))
            other = await _reflect(stub, topic, bearer(keys[1]))
    finally:
        await server.stop(0)
    assert not first.cache.hit
    assert repeat.cache.hit
    assert repeat.cache.source_workflow == first.name
    assert not other.cache.hit
    assert other.cache.verdict == pb.CACHE_VERDICT_EMPTY
    assert other.name != first.name
    scope_one = f"/key-{hash_key(keys[0])[:16]}/"
    scope_two = f"/key-{hash_key(keys[1])[:16]}/"
    assert scope_one in first.cache.namespace
    assert scope_two in other.cache.namespace


async def test_per_tenant_scope_shares_within_a_tenant_only(stack: InProcessStack, tmp_path):
    """With PONDER_GATEWAY_CACHE_SCOPE=per-tenant a second key of the same tenant is served the
    first key's answer, while a key of another tenant runs the workflow again."""
    keys = ("pt-team-a-first-01", "pt-team-a-second-02", "pt-team-b-only-03")
    scopes = ("workflows.run", "workflows.read")
    server = await gateway(
        stack,
        tmp_path,
        allow_anonymous=False,
        api_keys_file=keys_file(
            tmp_path / "tenants.keys",
            key_line(keys[0], key_id="a1", tenant="team-a", scopes=scopes),
            key_line(keys[1], key_id="a2", tenant="team-a", scopes=scopes),
            key_line(keys[2], key_id="b1", tenant="team-b", scopes=scopes),
        ),
        cache_scope="per-tenant",
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            topic = f"How do agents share memory, team case {uuid.uuid4().hex[:6]}?"
            first = await _reflect(stub, topic, bearer(keys[0]))
            colleague = await _reflect(stub, f"{topic} ", bearer(keys[1]))
            other = await _reflect(stub, topic, bearer(keys[2]))
    finally:
        await server.stop(0)
    assert not first.cache.hit
    assert colleague.cache.hit
    assert colleague.cache.source_workflow == first.name
    assert not other.cache.hit
    assert other.name != first.name
    assert "/tenant-team-a/" in first.cache.namespace
    assert "/tenant-team-b/" in other.cache.namespace


async def _research(stack: InProcessStack, library: Path, port: int = 0) -> ServiceServer:
    settings = load_settings(
        ResearchSettings,
        host="127.0.0.1",
        port=port,
        embedding_addr=stack.address("embedding"),
        library_dirs=[library],
        include_sample_library=False,
        index_path=library.parent / "vectors.sqlite3",
    )
    return await start_service(settings, ResearchModule, InMemorySpanExporter())


def _document(library: Path, name: str, title: str) -> None:
    record = {"id": name, "title": title, "text": f"{title}. A note kept in the library."}
    (library / f"{name}.jsonl").write_text(json.dumps(record) + "\n")


async def test_a_library_change_invalidates_library_answers(stack: InProcessStack, tmp_path):
    """GetLibrary reports the library's content hash; the gateway puts it in the namespace of
    library workflows, so after the library changes (research restarted with one more
    document) the same topic runs again instead of being served the old answer."""
    library = tmp_path / "library"
    library.mkdir()
    _document(library, "one", "Self-reflection in language agents")
    research = await _research(stack, library)
    port = research.port
    settings = load_settings(
        GatewaySettings,
        host="127.0.0.1",
        port=0,
        research_addr=f"127.0.0.1:{port}",
        embedding_addr=stack.address("embedding"),
        reflection_addr=stack.address("reflection"),
        store_path=tmp_path / "workflows.sqlite3",
        cache_library_version_seconds=0,
        cache_recent_seconds=0,
        expose_internal_services=True,  # the test reads GetLibrary through the gateway
        anonymous_scopes=["workflows.run", "workflows.read", "internal"],
    )
    server = await start_service(settings, UnwaitingGateway, InMemorySpanExporter())
    topic = f"How do language agents reflect, library case {uuid.uuid4().hex[:6]}?"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            research_stub = research_grpc.ResearchServiceStub(channel)  # forwarded by the gateway
            # The version the gateway keys on: what the caller's tenant ("anonymous" here)
            # searches, the shared library and its uploads.
            mine = research_pb2.GetLibraryRequest(tenant="anonymous")
            before = await research_stub.GetLibrary(mine, timeout=10)
            first = await _reflect(stub, topic)
            repeat = await _reflect(stub, f" {topic}")
            await research.stop(0)
            _document(library, "two", "Memory in language agents")
            research = await _research(stack, library, port)
            after = await research_stub.GetLibrary(mine, timeout=10)
            changed = await _reflect(stub, f"  {topic}")
    finally:
        await server.stop(0)
        await research.stop(0)
    assert (before.document_count, after.document_count) == (1, 2)
    assert len(before.version) == 16
    assert before.version != after.version
    assert repeat.cache.hit
    assert f"/library-{before.version}" in first.cache.namespace
    assert not changed.cache.hit
    assert changed.cache.verdict == pb.CACHE_VERDICT_EMPTY
    assert f"/library-{after.version}" in changed.cache.namespace


async def test_an_invalidate_through_the_gateway_empties_its_first_level(
    stack: InProcessStack, tmp_path
):
    """A repeat is answered from the gateway's memory; after InvalidateCache of the
    namespace through that gateway (internal services exposed, a cache.admin key) the same
    topic is looked up again, finds nothing and runs."""
    admin = "pk-cache-admin-first-level-0001"
    keys = keys_file(
        tmp_path / "keys",
        key_line(
            admin,
            key_id="ops",
            scopes={Scope.INTERNAL, Scope.CACHE_ADMIN, Scope.WORKFLOWS_RUN},
        ),
    )
    server = await gateway(
        stack,
        tmp_path,
        expose_internal_services=True,
        api_keys_file=keys,
        rate_limit_per_second=0,
        replay_seconds=0,
    )
    topic = f"How do language agents reflect on stale plans, case {uuid.uuid4().hex[:6]}?"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            first = await _reflect(stub, topic, bearer(admin))
            repeat = await _reflect(stub, topic, bearer(admin))
            removed = await embedding_grpc.EmbeddingServiceStub(channel).InvalidateCache(
                embedding_pb2.InvalidateCacheRequest(namespace=first.cache.namespace),
                metadata=bearer(admin),
                timeout=10,
            )
            after = await _reflect(stub, topic, bearer(admin))
    finally:
        await server.stop(0)
    assert not first.cache.hit
    assert repeat.cache.hit
    assert repeat.cache.source_workflow == first.name
    assert removed.removed_count >= 1
    assert not after.cache.hit
    assert after.cache.verdict == pb.CACHE_VERDICT_EMPTY


async def test_a_remembered_answer_goes_when_its_cache_entry_expires(
    stack: InProcessStack, tmp_path
):
    """Gateway A stores an answer with a 1.5 s TTL; gateway B (30 s first level) is answered
    from the cache and remembers it, but only until the entry's own expiry: once it has
    passed, B's repeat is looked up again, finds nothing and runs."""
    key = f"expiry-test:{uuid.uuid4().hex}{uuid.uuid4().hex}"  # both sign and verify alike
    storer = await gateway(
        stack, tmp_path / "a", cache_ttl_seconds=1.5, replay_seconds=0, cache_signing_key=key
    )
    reader = await gateway(stack, tmp_path / "b", replay_seconds=0, cache_signing_key=key)
    topic = f"How do language agents reflect on cached plans, case {uuid.uuid4().hex[:6]}?"
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{storer.port}") as a,
            grpc.aio.insecure_channel(f"127.0.0.1:{reader.port}") as b,
        ):
            first = await _reflect(workflow_grpc.WorkflowServiceStub(a), topic)
            hit = await _reflect(workflow_grpc.WorkflowServiceStub(b), topic)
            await asyncio.sleep(2.0)  # past the entry's expiry (well within B's 30 s)
            after = await _reflect(workflow_grpc.WorkflowServiceStub(b), topic)
    finally:
        await storer.stop(0)
        await reader.stop(0)
    assert not first.cache.hit
    assert hit.cache.hit
    assert hit.cache.source_workflow == first.name
    assert not after.cache.hit


async def test_an_invalidate_through_one_replica_empties_the_others_first_level(
    stack: InProcessStack, tmp_path, redis_url: str
):
    """Two replicas sharing Redis: B remembers an answer; an InvalidateCache of its
    namespace through A reaches B too (pub/sub), so B's next repeat is looked up again,
    finds nothing and runs, long before B's 30 s age limit."""
    admin = "pk-cache-admin-replicas-0001"
    keys = keys_file(
        tmp_path / "keys",
        key_line(
            admin, key_id="ops", scopes={Scope.INTERNAL, Scope.CACHE_ADMIN, Scope.WORKFLOWS_RUN}
        ),
    )
    servers = []
    for name in ("a", "b"):
        settings = load_settings(
            GatewaySettings,
            host="127.0.0.1",
            port=0,
            research_addr=stack.address("research"),
            embedding_addr=stack.address("embedding"),
            reflection_addr=stack.address("reflection"),
            store_path=tmp_path / name / "workflows.sqlite3",
            redis_url=redis_url,
            expose_internal_services=True,
            api_keys_file=keys,
            rate_limit_per_second=0,
            replay_seconds=0,
            cache_recent_seconds=30,
        )
        servers.append(await start_service(settings, GatewayModule, InMemorySpanExporter()))
    one, two = servers
    topic = f"How do agents share memory across replicas, case {uuid.uuid4().hex[:6]}?"
    try:
        for server in servers:
            assert isinstance(server.service, GatewayModule)
            await asyncio.wait_for(server.service.invalidations_heard(), 10)
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{one.port}") as a,
            grpc.aio.insecure_channel(f"127.0.0.1:{two.port}") as b,
        ):
            stub_b = workflow_grpc.WorkflowServiceStub(b)
            first = await _reflect(stub_b, topic, bearer(admin))
            repeat = await _reflect(stub_b, topic, bearer(admin))
            await embedding_grpc.EmbeddingServiceStub(a).InvalidateCache(
                embedding_pb2.InvalidateCacheRequest(namespace=first.cache.namespace),
                metadata=bearer(admin),
                timeout=10,
            )
            for _ in range(50):  # the message travels through Redis: a moment, not 30 s
                after = await _reflect(stub_b, topic, bearer(admin))
                if not after.cache.hit:
                    break
                await asyncio.sleep(0.1)
    finally:
        for server in servers:
            await server.stop(0)
    assert not first.cache.hit
    assert repeat.cache.hit
    assert not after.cache.hit
    assert after.cache.verdict == pb.CACHE_VERDICT_EMPTY
