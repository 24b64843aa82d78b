"""Reliability suite, security: the gateway's API keys, rate limits, secrets in logs and CORS,
over real gRPC and HTTP sockets on 127.0.0.1.

What stays open without a key, on purpose:
- gRPC `grpc.health.v1.Health` (Check, Watch): Kubernetes and load balancers probe it and
  cannot send keys; it answers SERVING or NOT_SERVING and nothing else.
- gRPC `grpc.reflection.v1alpha.ServerReflection`: it describes the API (services, methods,
  messages) and nothing else: the same contract `/openapi.json` publishes and the generated
  clients ship; grpcurl `list`/`describe` need it. It reads no data and runs no method.
  Where even that must be hidden, `PONDER_SERVER_REFLECTION=false` turns it off.
- REST `/healthz` (the health Check above), `/openapi.json`, `/docs`, `/redoc` and
  `/docs/assets/*` (the API description and the static pages that render it); CORS preflights
  (`OPTIONS`), which browsers send without credentials by design.
Every other gRPC method and every REST route of the OpenAPI document needs a key when
`PONDER_GATEWAY_ALLOW_ANONYMOUS=false`, and the scopes principals.METHOD_SCOPES names; the
internal services are forwarded only with PONDER_GATEWAY_EXPOSE_INTERNAL_SERVICES=true (then
they need the `internal` scope). On their own ports research, reflection and embedding need
the internal token (PONDER_INTERNAL_TOKEN) on every method but health and reflection.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pool
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts
from ponder_gateway.access import hash_key
from ponder_gateway.principals import Scope
from ponder_gateway.rest import build_facade
from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_rest.server import HttpServer
from ponder_runtime import SettingsError, load_settings
from ponder_runtime.internal_auth import INTERNAL_TOKEN_HEADER
from tests.conftest import InProcessStack
from tests.support.gateways import gateway, rest_url
from tests.support.keys import KEY, all_scopes_key, bearer, key_line, keys_file
from tests.support.methods import (
    HEALTH,
    OPEN_SERVICES,
    call_raw,
    served_methods,
)


PRODUCT_SERVICES = {
    "ponder.workflow.v1.WorkflowService",
    "ponder.library.v1.LibraryService",
    "ponder.research.v1.ResearchService",
    "ponder.reflection.v1.ReflectionService",
    "ponder.embedding.v1.EmbeddingService",
}
OPEN_PAGES = ("/healthz", "/openapi.json", "/docs", "/redoc")
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED.value[0]
WRONG_KEY = "pk-wrong-fedcba9876543210"
# Authorization values that must all be refused: a wrong key, the right key without the
# scheme, under another scheme, with nothing after the scheme, or glued to it.
BAD_AUTHORIZATIONS = (f"Bearer {WRONG_KEY}", KEY, f"Basic {KEY}", "Bearer", f"Bearer{KEY}")


def enumeration_access(tmp_path: Path) -> dict[str, object]:
    """Keys required, the internal services forwarded, KEY holding every scope; a burst large
    enough for every refused attempt of an enumeration (refused attempts spend their peer's
    bucket)."""
    return {
        "allow_anonymous": False,
        "api_keys_file": all_scopes_key(tmp_path),
        "expose_internal_services": True,
        "rate_limit_burst": 1000,
    }


def secret_forms(*keys: str) -> list[str]:
    """What must never show: each key, its bearer form, and its prefixes of more than 8
    characters (every longer prefix contains the 9-character one)."""
    forms: list[str] = []
    for key in keys:
        forms += [key, f"Bearer {key}", key[:9]]
    return forms


def leaks(text: str, forms: Iterable[str]) -> list[str]:
    """The secret forms found in `text`."""
    return [form for form in forms if form in text]


def _error_text(error: grpc.aio.AioRpcError) -> str:
    """Everything a gRPC client gets back with an error."""
    return f"{error.details()} {error.debug_error_string()} {error.trailing_metadata()!r}"


# --- 1. a key on every method ------------------------------------------------------------------


async def test_every_grpc_method_needs_a_key_but_health_and_reflection(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """Enumerated from the gateway's own reflection: every method of WorkflowService and of
    the forwarded research, reflection and embedding services is UNAUTHENTICATED without a
    key and with each malformed or wrong one (the message never echoes the key), and passes
    the guard with the right key; only health and reflection answer without a key; no guarded
    method takes a client stream (the guard wraps unary-request handlers only)."""
    server = await gateway(stack, tmp_path, **enumeration_access(tmp_path))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            methods = await served_methods(channel)  # reflection itself needs no key
            services = {m.service for m in methods}
            assert services == PRODUCT_SERVICES | OPEN_SERVICES
            guarded = [m for m in methods if m.service not in OPEN_SERVICES]
            pool = descriptor_pool.Default()  # the ponder package's own descriptors
            assert len(guarded) == sum(
                len(pool.FindServiceByName(s).methods) for s in PRODUCT_SERVICES
            )
            assert not [m.path for m in guarded if m.client_streaming]
            passed: dict[str, str] = {}
            for method in guarded:
                for metadata in ((), *((("authorization", bad),) for bad in BAD_AUTHORIZATIONS)):
                    error = await call_raw(channel, method, metadata)
                    assert error is not None, (method.path, metadata)
                    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, (
                        method.path,
                        metadata,
                        error.code(),
                    )
                    assert not leaks(_error_text(error), secret_forms(KEY, WRONG_KEY))
                error = await call_raw(channel, method, bearer(KEY))
                passed[method.path] = "OK" if error is None else error.code().name
            assert "UNAUTHENTICATED" not in passed.values(), passed
            # An empty request is refused by validation, not by the guard.
            assert passed["/ponder.workflow.v1.WorkflowService/RunReflectionWorkflow"] == (
                "INVALID_ARGUMENT"
            )
            assert passed["/ponder.workflow.v1.WorkflowService/ListWorkflows"] == "OK"
            assert passed["/ponder.embedding.v1.EmbeddingService/GetCacheStats"] == "OK"

            # Health answers without a key (List: grpcio's aio servicer does not implement it).
            health = {
                m.name: await call_raw(channel, m, ()) for m in methods if m.service == HEALTH
            }
            assert health["Check"] is None
            assert health["Watch"] is None
            assert all(
                e is None or e.code() != grpc.StatusCode.UNAUTHENTICATED for e in health.values()
            )
    finally:
        await server.stop(0)


def _probe_path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "probe", template)


async def test_every_rest_route_needs_a_key_but_the_open_pages(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """Every operation of the gateway's /openapi.json is 401 with a google.rpc.Status JSON
    body (code 16) without a key and with each wrong or malformed one, never echoing the key,
    and passes the guard with the right key; /healthz, /openapi.json, /docs, /redoc and their
    assets answer 200 without a key."""
    server = await gateway(stack, tmp_path, **enumeration_access(tmp_path))
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http:
            for page in OPEN_PAGES:
                reply = await http.get(page)
                assert reply.status_code == 200, page
            docs = (await http.get("/docs")).text
            assets = re.findall(r"/docs/assets/[A-Za-z0-9._-]+", docs)
            assert assets
            for asset in assets:
                assert (await http.get(asset)).status_code == 200, asset
            document = (await http.get("/openapi.json")).json()
            operations = [
                (verb.upper(), _probe_path(path))
                for path, item in document["paths"].items()
                for verb in item
                if verb in ("get", "post", "put", "patch", "delete")
            ]
            pool = descriptor_pool.Default()  # every product method has one google.api.http rule
            assert len(operations) == sum(
                len(pool.FindServiceByName(s).methods) for s in PRODUCT_SERVICES
            )
            passed: dict[str, int] = {}
            for verb, path in operations:
                body = b"{}" if verb in ("POST", "PUT", "PATCH") else None
                for auth in ({}, *({"Authorization": bad} for bad in BAD_AUTHORIZATIONS)):
                    reply = await http.request(
                        verb,
                        path,
                        content=body,
                        headers={**auth, "content-type": "application/json"},
                    )
                    assert reply.status_code == 401, (verb, path, auth, reply.text)
                    assert reply.headers["content-type"] == "application/json"
                    error = reply.json()
                    assert error["code"] == UNAUTHENTICATED
                    assert error["message"]
                    assert not leaks(reply.text + str(reply.headers), secret_forms(KEY, WRONG_KEY))
                reply = await http.request(
                    verb,
                    path,
                    content=body,
                    headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json"},
                )
                passed[f"{verb} {path}"] = reply.status_code
            assert 401 not in passed.values(), passed
            assert passed["POST /v1/workflows/reflection"] == 400  # validation, past the guard
            assert passed["GET /v1/workflows/probe"] == 404
            assert passed["GET /v1/workflows"] == 200
    finally:
        await server.stop(0)


async def test_internal_services_refuse_calls_without_the_internal_token(
    process_stack: Stack,
) -> None:
    """Real processes: on research, reflection and embedding, every method their own
    reflection lists (health and reflection aside) is UNAUTHENTICATED without the internal
    token, with a wrong one and with an API key instead, and passes the guard with the
    stack's token; health and reflection answer without it (probes, grpcurl list)."""
    expected = {
        # research also serves LibraryService (the gateway forwards it with the caller's tenant)
        "research": {"ponder.research.v1.ResearchService", "ponder.library.v1.LibraryService"},
        "reflection": {"ponder.reflection.v1.ReflectionService"},
        "embedding": {"ponder.embedding.v1.EmbeddingService"},
    }
    refused = ((), ((INTERNAL_TOKEN_HEADER, "x" * 43),), bearer(KEY))
    for name, services in expected.items():
        async with grpc.aio.insecure_channel(process_stack.service(name).address) as channel:
            methods = await served_methods(channel)  # reflection needs no token
            guarded = [m for m in methods if m.service not in OPEN_SERVICES]
            assert {m.service for m in guarded} == services
            for method in guarded:
                for metadata in refused:
                    error = await call_raw(channel, method, metadata)
                    assert error is not None, (method.path, metadata)
                    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, method.path
                error = await call_raw(channel, method, process_stack.internal_metadata())
                assert error is None or error.code() != grpc.StatusCode.UNAUTHENTICATED
            check = next(m for m in methods if m.service == HEALTH and m.name == "Check")
            assert await call_raw(channel, check, ()) is None


# --- 2. keys never logged ----------------------------------------------------------------------


async def _call_with_keys(grpc_address: str, http_url: str, key: str, wrong: str) -> list[str]:
    """Six successful calls with `key` (two over gRPC, one of them forwarded to embedding; a
    workflow run and three reads over REST, Authorization in several cases), wrong-key calls
    over both paths, then rate-limited calls over both; returns everything the clients got."""
    answers: list[str] = []
    async with (
        grpc.aio.insecure_channel(grpc_address) as channel,
        httpx.AsyncClient(base_url=http_url, timeout=30) as http,
    ):
        stub = workflow_grpc.WorkflowServiceStub(channel)
        cache = embedding_grpc.EmbeddingServiceStub(channel)
        listed = await stub.ListWorkflows(
            pb.ListWorkflowsRequest(page_size=1), metadata=bearer(key), timeout=10
        )
        stats = await cache.GetCacheStats(
            embedding_pb.GetCacheStatsRequest(), metadata=bearer(key), timeout=10
        )
        answers += [str(listed), str(stats)]
        run = await http.post(
            "/v1/workflows/reflection",
            json={
                "topic": "self-reflection in agents",
                "parameters": {"cachePolicy": "CACHE_POLICY_BYPASS"},
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        name = run.json()["workflow"]["name"]
        replies = [
            run,
            await http.get("/v1/workflows", headers={"authorization": f"Bearer {key}"}),
            await http.get("/v1/workflows", headers={"AUTHORIZATION": f"bearer {key}"}),
            await http.get(f"/v1/{name}", headers={"aUtHoRiZaTiOn": f"BEARER {key}"}),
        ]
        assert [r.status_code for r in replies] == [200] * 4
        for header in ("authorization", "Authorization", "AUTHORIZATION"):
            refused = await http.get("/v1/workflows", headers={header: f"Bearer {wrong}"})
            assert refused.status_code == 401
            replies.append(refused)
        for header in ("Authorization", "authorization"):  # the bucket is empty now
            limited = await http.get("/v1/workflows", headers={header: f"Bearer {key}"})
            assert limited.status_code == 429
            replies.append(limited)
        for metadata, code in (
            (bearer(wrong), grpc.StatusCode.UNAUTHENTICATED),
            (bearer(key), grpc.StatusCode.RESOURCE_EXHAUSTED),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=metadata)
            assert caught.value.code() == code
            answers.append(_error_text(caught.value))
        answers += [f"{r.headers!r} {r.text}" for r in replies]
    return answers


async def test_keys_never_reach_logs_spans_or_error_messages(
    stack: InProcessStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway process with DEBUG logs and every span printed to its log: successful,
    wrong-key and rate-limited calls over gRPC and REST (a workflow run, a forwarded internal
    call, Authorization under several header-name and scheme cases) leave no trace of the
    key, of the wrong key, of their bearer forms or of any prefix longer than 8 characters, in
    any log file, in the in-process services' logs (which get forwarded calls) and spans, or in
    any answer the clients got."""
    caplog.set_level(logging.DEBUG)
    key = f"pk-{secrets.token_hex(16)}"
    wrong = f"pk-{secrets.token_hex(16)}"
    log_dir = tmp_path / "logs"
    ports = StackPorts.free()
    process = Stack(
        ports=ports,
        log_dir=log_dir,
        extra_env={
            "PONDER_LOG_LEVEL": "DEBUG",
            "OTEL_TRACES_EXPORTER": "console",  # every span, attributes included, in the log
            "OTEL_TRACES_SAMPLER": "always_on",
            "PONDER_GATEWAY_ALLOW_ANONYMOUS": "false",
            "PONDER_GATEWAY_API_KEYS_FILE": str(
                keys_file(tmp_path / "keys", key_line(key, key_id="all", scopes=Scope))
            ),
            "PONDER_GATEWAY_EXPOSE_INTERNAL_SERVICES": "true",
            "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0.001",  # no refill within the test
            "PONDER_GATEWAY_RATE_LIMIT_BURST": "6",  # the successful calls of _call_with_keys
            "PONDER_GATEWAY_STORE_PATH": str(tmp_path / "workflows.sqlite3"),
            "PONDER_RESEARCH_ADDR": stack.address("research"),
            "PONDER_EMBEDDING_ADDR": stack.address("embedding"),
            "PONDER_REFLECTION_ADDR": stack.address("reflection"),
        },
    )
    process.services = [s for s in process.services if s.name == "gateway"]
    stack.spans.clear()
    process.start()
    try:
        await process.wait_ready(timeout=60)
        answers = await _call_with_keys(
            process.services[0].address, f"http://127.0.0.1:{ports.gateway_http}", key, wrong
        )
    finally:
        assert process.stop() == {"gateway": 0}
    forms = secret_forms(key, wrong)
    files = sorted(p for p in log_dir.rglob("*") if p.is_file())
    assert [p.name for p in files] == ["gateway.log"]
    text = files[0].read_text(errors="replace")
    # The log holds the calls: DEBUG lines, an access-log line per REST call, the spans of the
    # forwarded call and of the workflow, the refusals naming the caller by its hash prefix.
    assert '"level":"DEBUG"' in text
    assert text.count('"message":"http request"') == 9
    assert '"name": "/ponder.embedding.v1.EmbeddingService/GetCacheStats"' in text
    assert '"name": "workflow reflection"' in text
    assert f"rate limit exceeded for key:{hash_key(key)[:12]}" in text
    assert '"code":"UNAUTHENTICATED"' in text
    assert not leaks(text, forms)
    assert not leaks(caplog.text, forms)  # research, embedding, reflection: in this process
    spans = [
        json.dumps(dict(span.attributes or {})) + span.name
        for span in stack.spans.get_finished_spans()
    ]
    assert spans  # the forwarded call and the workflow's downstream calls were traced
    assert not leaks("\n".join(spans), forms)
    assert not leaks("\n".join(answers), forms)


# --- 3. rate limits cannot be bypassed ---------------------------------------------------------


def _retry_caller(status: dict[str, Any]) -> str:
    """The caller named in a REST 429's ErrorInfo."""
    for detail in status["details"]:
        if detail["@type"].endswith("google.rpc.ErrorInfo"):
            return str(detail["metadata"]["caller"])
    raise AssertionError(f"no ErrorInfo in {status}")


def _grpc_caller(error: grpc.aio.AioRpcError) -> str:
    """The caller named in a gRPC RESOURCE_EXHAUSTED's ErrorInfo."""
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Unpack(info):
            return str(info.metadata["caller"])
    raise AssertionError(f"no ErrorInfo in {status}")


async def test_rest_header_case_and_scheme_case_share_one_bucket(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """The case of the Authorization header name, of the Bearer scheme and spaces around the
    key change nothing: one key, one bucket; beyond the burst every variant is 429."""
    burst = 4
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_key_hashes=[hash_key(KEY)],
        rate_limit_per_second=0.001, rate_limit_burst=burst,
    )  # fmt: skip
    variants = [
        ("authorization", f"Bearer {KEY}"),
        ("Authorization", f"bearer {KEY}"),
        ("AUTHORIZATION", f"BEARER  {KEY}"),
        ("aUtHoRiZaTiOn", f"bEaReR {KEY}"),
    ]
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http:
            codes = []
            callers = set()
            for header, value in variants * 2:
                reply = await http.get("/v1/workflows/nothing-here", headers={header: value})
                codes.append(reply.status_code)
                if reply.status_code == 429:
                    callers.add(_retry_caller(reply.json()))
            assert codes == [404] * burst + [429] * len(variants)
            assert callers == {f"key:{hash_key(KEY)[:12]}"}
    finally:
        await server.stop(0)


async def test_rest_and_grpc_and_forwarded_services_share_one_bucket(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """Alternating gRPC and REST, WorkflowService and a forwarded internal service, with one
    key spends one budget: after the burst both paths refuse, naming the same caller."""
    burst = 4
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_keys_file=all_scopes_key(tmp_path),
        expose_internal_services=True, rate_limit_per_second=0.001, rate_limit_burst=burst,
    )  # fmt: skip
    auth = {"Authorization": f"Bearer {KEY}"}
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
            httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http,
        ):
            stub = workflow_grpc.WorkflowServiceStub(channel)
            cache = embedding_grpc.EmbeddingServiceStub(channel)
            outcomes: list[str] = []
            callers: set[str] = set()
            for round_ in range(3):
                try:
                    if round_ % 2 == 0:
                        await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(KEY))
                    else:
                        await cache.GetCacheStats(
                            embedding_pb.GetCacheStatsRequest(), metadata=bearer(KEY)
                        )
                    outcomes.append("grpc ok")
                except grpc.aio.AioRpcError as exc:
                    outcomes.append(f"grpc {exc.code().name}")
                    callers.add(_grpc_caller(exc))
                path = "/v1/workflows" if round_ % 2 == 0 else "/v1/cache/stats"
                reply = await http.get(path, headers=auth)
                outcomes.append(f"rest {reply.status_code}")
                if reply.status_code == 429:
                    callers.add(_retry_caller(reply.json()))
            assert outcomes == ["grpc ok", "rest 200"] * 2 + ["grpc RESOURCE_EXHAUSTED", "rest 429"]
            assert callers == {f"key:{hash_key(KEY)[:12]}"}
    finally:
        await server.stop(0)


async def test_forwarding_headers_do_not_give_anonymous_callers_fresh_buckets(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """Anonymous callers are limited per TCP peer: X-Forwarded-For, X-Real-IP, Forwarded and
    the like with a new value on every call (REST headers and gRPC metadata alike) do not
    make a new bucket, since no setting declares a trusted proxy; REST and gRPC from one
    address share the bucket; a keyed caller keeps a budget of its own."""
    assert not [
        name for name in GatewaySettings.model_fields if "proxy" in name or "forward" in name
    ]  # no trusted-proxy setting: the peer address is the only anonymous identity
    burst = 3
    server = await gateway(
        stack, tmp_path, allow_anonymous=True, api_key_hashes=[hash_key(KEY)],
        rate_limit_per_second=0.001, rate_limit_burst=burst,
    )  # fmt: skip

    def spoofed(n: int) -> dict[str, str]:
        address = f"203.0.113.{n}"
        return {
            "x-forwarded-for": address,
            "x-real-ip": address,
            "forwarded": f"for={address};proto=https",
            "true-client-ip": address,
            "cf-connecting-ip": address,
            "x-client-ip": address,
        }

    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
            httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http,
        ):
            stub = workflow_grpc.WorkflowServiceStub(channel)
            outcomes: list[str] = []
            callers: set[str] = set()
            for n in range(8):
                if n % 2 == 0:
                    reply = await http.get("/v1/workflows/nothing-here", headers=spoofed(n))
                    outcomes.append(f"rest {reply.status_code}")
                    if reply.status_code == 429:
                        callers.add(_retry_caller(reply.json()))
                else:
                    try:
                        await stub.GetWorkflow(
                            pb.GetWorkflowRequest(name="workflows/nothing-here"),
                            metadata=tuple(spoofed(n).items()),
                        )
                    except grpc.aio.AioRpcError as exc:
                        outcomes.append(f"grpc {exc.code().name}")
                        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                            callers.add(_grpc_caller(exc))
            assert outcomes == [
                "rest 404",
                "grpc NOT_FOUND",
                "rest 404",
                "grpc RESOURCE_EXHAUSTED",
                "rest 429",
                "grpc RESOURCE_EXHAUSTED",
                "rest 429",
                "grpc RESOURCE_EXHAUSTED",
            ]
            assert callers == {"peer:ipv4:127.0.0.1"}
            keyed = await http.get(
                "/v1/workflows/nothing-here", headers={"Authorization": f"Bearer {KEY}"}
            )
            assert keyed.status_code == 404
    finally:
        await server.stop(0)


async def test_refused_key_attempts_spend_the_peer_budget(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """Calls refused for their key (none, wrong, a new wrong one each time, with spoofed
    forwarding headers, over REST and gRPC alternately) spend their TCP peer's bucket: after
    the burst they are 429 / RESOURCE_EXHAUSTED naming the peer, so keys cannot be guessed at
    line rate; a caller with the right key from the same address keeps its own budget."""
    burst = 3
    server = await gateway(
        stack, tmp_path, allow_anonymous=False, api_key_hashes=[hash_key(KEY)],
        rate_limit_per_second=0.001, rate_limit_burst=burst,
    )  # fmt: skip
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
            httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http,
        ):
            stub = workflow_grpc.WorkflowServiceStub(channel)
            outcomes: list[str] = []
            callers: set[str] = set()
            for n in range(6):
                guess = {} if n == 0 else {"authorization": f"Bearer pk-guess-{n:04d}"}
                spoof = {"x-forwarded-for": f"198.51.100.{n}"}
                if n % 2 == 0:
                    reply = await http.get("/v1/workflows", headers={**guess, **spoof})
                    outcomes.append(f"rest {reply.status_code}")
                    if reply.status_code == 429:
                        callers.add(_retry_caller(reply.json()))
                    continue
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.ListWorkflows(
                        pb.ListWorkflowsRequest(), metadata=tuple({**guess, **spoof}.items())
                    )
                outcomes.append(f"grpc {caught.value.code().name}")
                if caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    callers.add(_grpc_caller(caught.value))
            assert outcomes == [
                "rest 401",
                "grpc UNAUTHENTICATED",
                "rest 401",
                "grpc RESOURCE_EXHAUSTED",
                "rest 429",
                "grpc RESOURCE_EXHAUSTED",
            ]
            assert callers == {"peer:ipv4:127.0.0.1"}
            keyed = await http.get("/v1/workflows", headers={"Authorization": f"Bearer {KEY}"})
            assert keyed.status_code == 200
            await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(KEY))
    finally:
        await server.stop(0)


# --- 4. CORS -----------------------------------------------------------------------------------

EVIL = "https://evil.example"
APP = "https://app.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


def _cors_headers(reply: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in reply.headers.items() if k.startswith("access-control-allow")}


async def _cors_replies(http: httpx.AsyncClient, origin: str) -> list[httpx.Response]:
    """A simple request (a REST route and /healthz) and a preflight from `origin`."""
    return [
        await http.get("/v1/workflows", headers={"Origin": origin}),
        await http.get("/healthz", headers={"Origin": origin}),
        await http.options("/v1/workflows", headers={"Origin": origin, **PREFLIGHT}),
    ]


async def test_cors_without_origins_grants_nothing(stack: InProcessStack, tmp_path: Path) -> None:
    """With no origins configured (the default) an arbitrary Origin gets no
    Access-Control-Allow-* header on a simple request, and its preflight is refused (403)."""
    server = await gateway(stack, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http:
            simple, health, preflight = await _cors_replies(http, EVIL)
            assert (simple.status_code, health.status_code, preflight.status_code) == (
                200,
                200,
                403,
            )
            for reply in (simple, health, preflight):
                assert _cors_headers(reply) == {}
    finally:
        await server.stop(0)


async def test_cors_grants_only_the_listed_origins(stack: InProcessStack, tmp_path: Path) -> None:
    """With one origin listed (credentials allowed), exactly that origin gets it back with
    credentials and Vary: Origin; other origins, look-alikes, a different case or scheme and
    `null` get no Access-Control-Allow-* header and a refused preflight."""
    server = await gateway(stack, tmp_path, cors_allowed_origins=[APP], cors_allow_credentials=True)
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http:
            for reply in await _cors_replies(http, APP):
                assert reply.status_code in (200, 204)
                assert reply.headers["access-control-allow-origin"] == APP
                assert reply.headers["access-control-allow-credentials"] == "true"
                assert "Origin" in reply.headers["vary"]
            for other in (
                EVIL,
                "null",
                f"{APP}.evil.example",
                "https://evil.app.example",
                "http://app.example",
                APP.upper(),
                f"{APP}:8443",
            ):
                simple, health, preflight = await _cors_replies(http, other)
                assert preflight.status_code == 403, other
                for reply in (simple, health, preflight):
                    assert _cors_headers(reply) == {}, other
    finally:
        await server.stop(0)


async def test_cors_wildcard_never_grants_credentials(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """`"*"` without credentials answers `*` and never Allow-Credentials; `"*"` with
    PONDER_GATEWAY_CORS_ALLOW_CREDENTIALS=true is refused at start-up with an error naming
    both variables; and a facade given that combination anyway (settings copied past
    validation) still answers `*` without credentials, never the reflected origin."""
    server = await gateway(stack, tmp_path, cors_allowed_origins=["*"])
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=10) as http:
            for reply in await _cors_replies(http, EVIL):
                assert reply.headers["access-control-allow-origin"] == "*"
                assert "access-control-allow-credentials" not in reply.headers
        for origins in (["*"], ["*", APP]):
            with pytest.raises(SettingsError) as caught:
                load_settings(
                    GatewaySettings, cors_allowed_origins=origins, cors_allow_credentials=True
                )
            message = str(caught.value)
            assert "PONDER_GATEWAY_CORS_ALLOW_CREDENTIALS" in message
            assert "PONDER_GATEWAY_CORS_ALLOWED_ORIGINS" in message
        assert load_settings(
            GatewaySettings, cors_allowed_origins=[APP], cors_allow_credentials=True
        ).cors_allow_credentials

        # Defence in depth: the facade itself, on a real socket, with the refused combination.
        module = server.service
        assert isinstance(module, GatewayModule)
        unsafe = server.settings.model_copy(
            update={"cors_allowed_origins": ["*"], "cors_allow_credentials": True}
        )
        assert isinstance(unsafe, GatewaySettings)
        app = build_facade(unsafe, module.service_names, server.handlers, server.telemetry)
        http_server = HttpServer(app, "127.0.0.1", 0, grace_seconds=0)
        await http_server.start()
        try:
            url = f"http://127.0.0.1:{http_server.port}"
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                for reply in await _cors_replies(http, EVIL):
                    assert reply.headers["access-control-allow-origin"] == "*"
                    assert "access-control-allow-credentials" not in reply.headers
        finally:
            await http_server.stop()
    finally:
        await server.stop(0)


async def test_gateway_process_refuses_wildcard_with_credentials(tmp_path: Path) -> None:
    """Started as a process with "*" and credentials, the gateway exits with status 2 before
    listening and says which variables to change."""
    process = Stack(
        ports=StackPorts.free(),
        log_dir=tmp_path,
        extra_env={
            "PONDER_GATEWAY_CORS_ALLOWED_ORIGINS": '["*"]',
            "PONDER_GATEWAY_CORS_ALLOW_CREDENTIALS": "true",
        },
    )
    process.services = [s for s in process.services if s.name == "gateway"]
    process.start()
    service = process.services[0]
    assert service.process is not None
    assert service.process.wait(timeout=60) == 2
    log = service.log_path.read_text()
    assert "PONDER_GATEWAY_CORS_ALLOW_CREDENTIALS" in log
    assert "PONDER_GATEWAY_CORS_ALLOWED_ORIGINS" in log
