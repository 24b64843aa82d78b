"""The REST/JSON facade on the real Ponder API, over HTTP on a real socket (httpx and curl)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import httpx
import pytest

from tests.conftest import InProcessStack
from tests.support.grpc_errors import violations
from tests.support.sse import sse_fields


TOPIC = "How do language model agents use self-reflection to improve their answers?"
BYPASS = {"cachePolicy": "CACHE_POLICY_BYPASS"}


@pytest.fixture
async def http(stack: InProcessStack):
    """An HTTP client on the in-process gateway's REST port."""
    async with httpx.AsyncClient(base_url=stack.http_url, timeout=60) as client:
        yield client


async def test_reflection_workflow_over_rest(http: httpx.AsyncClient):
    """POST /v1/workflows/reflection runs the workflow: camelCase JSON with zero values
    emitted, int64-free Duration/Timestamp strings, a request id and a trace id."""
    reply = await http.post(
        "/v1/workflows/reflection",
        json={"topic": TOPIC, "parameters": BYPASS},
        headers={"x-request-id": "req-123"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-request-id"] == "req-123"
    assert len(reply.headers["x-trace-id"]) == 32
    workflow = reply.json()["workflow"]
    assert workflow["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert workflow["kind"] == "WORKFLOW_KIND_REFLECTION"
    assert workflow["name"].startswith("workflows/")
    assert workflow["executionTime"].endswith("s")
    assert workflow["createTime"].endswith("Z")
    assert workflow["traceId"] == reply.headers["x-trace-id"]
    assert "[1]" in workflow["result"]["text"]
    assert "execution_time" not in workflow


async def test_long_running_workflow_create_get_list_watch(http: httpx.AsyncClient):
    """body: "workflow" with workflow_id from the query; GET by name; list with a filter and
    page size from the query; watch as NDJSON ends with FINISHED."""
    workflow_id = f"rest-{uuid.uuid4().hex[:8]}"
    created = await http.post(
        f"/v1/workflows?workflowId={workflow_id}",
        json={"kind": "WORKFLOW_KIND_REFLECTION", "topic": TOPIC, "parameters": BYPASS},
    )
    assert created.status_code == 200, created.text
    name = created.json()["workflow"]["name"]
    assert name == f"workflows/{workflow_id}"
    lines = []
    async with http.stream("GET", f"/v1/{name}:watch") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "application/json"
        async for line in stream.aiter_lines():
            if line:
                lines.append(json.loads(line))
    assert all("result" in line for line in lines)
    events = [line["result"]["eventType"] for line in lines]
    assert events[0] == "WORKFLOW_EVENT_TYPE_SNAPSHOT"
    assert events[-1] == "WORKFLOW_EVENT_TYPE_FINISHED"
    got = await http.get(f"/v1/{name}")
    assert got.status_code == 200
    assert got.json()["workflow"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    listed = await http.get(
        "/v1/workflows", params={"pageSize": "1", "filter": "state = SUCCEEDED"}
    )
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert len(page["workflows"]) == 1
    assert page["workflows"][0]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    following = await http.get("/v1/workflows", params={"pageToken": page["nextPageToken"],
                                                        "filter": "state = SUCCEEDED"})  # fmt: skip
    assert following.status_code == 200
    assert following.json()["workflows"][0]["name"] != page["workflows"][0]["name"]


async def test_watch_as_server_sent_events(http: httpx.AsyncClient):
    """Accept: text/event-stream gives SSE frames and an explicit `end` event."""
    created = await http.post(
        "/v1/workflows", json={"kind": "WORKFLOW_KIND_REFLECTION", "topic": TOPIC}
    )
    name = created.json()["workflow"]["name"]
    async with http.stream(
        "GET", f"/v1/{name}:watch", headers={"accept": "text/event-stream"}
    ) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        text = "".join([chunk async for chunk in stream.aiter_text()])
    frames = [f for f in text.split("\n\n") if f]
    assert frames[-1] == "event: end\ndata: {}"
    events = [sse_fields(frame) for frame in frames[:-1]]
    first = json.loads(events[0]["data"])
    assert first["eventType"] == "WORKFLOW_EVENT_TYPE_SNAPSHOT"
    last = json.loads(events[-1]["data"])
    assert last["eventType"] == "WORKFLOW_EVENT_TYPE_FINISHED"
    # Each event after the snapshot carries its sequence as the SSE id.
    assert all(e["id"] == json.loads(e["data"])["sequence"] for e in events[1:])


async def test_cancel_with_a_custom_verb(http: httpx.AsyncClient):
    """POST /v1/workflows/{id}:cancel; cancelling a finished workflow is FAILED_PRECONDITION,
    which grpc-gateway maps to 400."""
    run = await http.post("/v1/workflows/reflection", json={"topic": TOPIC})
    name = run.json()["workflow"]["name"]
    reply = await http.post(f"/v1/{name}:cancel", json={})
    assert reply.status_code == 400
    assert reply.json()["code"] == 9  # FAILED_PRECONDITION


async def test_errors_are_status_json_with_the_grpc_gateway_codes(http: httpx.AsyncClient):
    """Validation, unknown resources, routing, JSON, content type and size errors."""
    empty = await http.post("/v1/workflows/reflection", json={"topic": ""})
    assert empty.status_code == 400
    body = empty.json()
    assert body["code"] == 3
    assert "topic" in violations(body)
    error_info = next(d for d in body["details"] if d["@type"].endswith("ErrorInfo"))
    assert error_info["metadata"] == {}  # unpopulated fields are emitted
    missing = await http.get("/v1/workflows/no-such-workflow")
    assert missing.status_code == 404
    assert missing.json()["code"] == 5
    unknown_path = await http.get("/v2/nothing")
    assert unknown_path.status_code == 404
    assert unknown_path.json()["code"] == 5
    wrong_method = await http.delete("/v1/workflows")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, POST"
    assert wrong_method.json()["code"] == 12
    malformed = await http.post(
        "/v1/workflows/reflection",
        content=b'{"topic": "x",,}',
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 400
    assert "line 1 column 15" in violations(malformed.json())["body"]
    unknown_field = await http.post("/v1/workflows/reflection", json={"topc": TOPIC})
    assert unknown_field.status_code == 400
    assert "topc" in violations(unknown_field.json())["body"]
    form_type = {"content-type": "application/x-www-form-urlencoded"}
    form = await http.post("/v1/workflows/reflection", content=b"topic=x", headers=form_type)
    assert form.status_code == 415
    assert "application/json" in form.json()["message"]
    huge = await http.post("/v1/workflows/reflection", json={"topic": "x" * (2 * 1024 * 1024)})
    assert huge.status_code == 413
    bad_query = await http.get("/v1/workflows", params={"pageSize": "many"})
    assert bad_query.status_code == 400
    assert "pageSize" in violations(bad_query.json())
    unknown_query = await http.get("/v1/workflows", params={"colour": "blue"})
    assert "colour" in violations(unknown_query.json())
    watch_missing = await http.get("/v1/workflows/no-such-workflow:watch")
    assert watch_missing.status_code == 404  # an error before the first event: a plain 404


async def test_deadline_headers(http: httpx.AsyncClient):
    """Grpc-Timeout and X-Request-Timeout set the deadline; a malformed one is a 400."""
    slow = await http.post(
        "/v1/workflows/reflection",
        json={"topic": TOPIC, "parameters": BYPASS},
        headers={"grpc-timeout": "1n"},
    )
    assert slow.status_code == 504
    assert slow.json()["code"] == 4
    bad = await http.get("/v1/workflows", headers={"grpc-timeout": "soon"})
    assert bad.status_code == 400
    simple = await http.get("/v1/workflows", headers={"x-request-timeout": "30"})
    assert simple.status_code == 200


async def test_traceparent_is_continued(stack: InProcessStack, http: httpx.AsyncClient):
    """A W3C traceparent makes the workflow part of the caller's trace, across services."""
    trace_id = uuid.uuid4().hex
    reply = await http.post(
        "/v1/workflows/reflection",
        json={"topic": TOPIC, "parameters": BYPASS},
        headers={"traceparent": f"00-{trace_id}-{'1' * 16}-01"},
    )
    assert reply.status_code == 200
    assert reply.json()["workflow"]["traceId"] == trace_id
    assert reply.headers["x-trace-id"] == trace_id
    for _ in range(50):
        services = {
            s.resource.attributes["service.name"]
            for s in stack.spans.get_finished_spans()
            if format(s.context.trace_id, "032x") == trace_id
        }
        if {"gateway", "research", "reflection", "embedding"} <= services:
            break
        await asyncio.sleep(0.1)
    assert {"gateway", "research", "reflection", "embedding"} <= services


async def test_internal_service_over_rest(http: httpx.AsyncClient):
    """An annotated internal service the gateway proxies is reachable over REST (over its
    channel): POST /v1/research:search."""
    reply = await http.post(
        "/v1/research:search", json={"query": "self-reflection for language agents"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["documents"]


async def test_openapi_docs_and_health(http: httpx.AsyncClient):
    """/openapi.json lists the routes; /docs and /redoc load their assets locally;
    /healthz reflects grpc.health.v1."""
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/workflows/reflection" in spec["paths"]
    assert "/v1/workflows/{workflow}:cancel" in spec["paths"]
    for page in ("/docs", "/redoc"):
        html = (await http.get(page)).text
        assert "/openapi.json" in html
        assert "cdn" not in html.lower()
    asset = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.content) > 100_000
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "SERVING"}
    unknown = await http.get("/healthz", params={"service": "no.such.Service"})
    assert unknown.status_code == 404


async def test_with_curl(stack: InProcessStack):
    """The README's curl line works as written."""
    body = json.dumps({"topic": TOPIC})
    done = await asyncio.to_thread(
        subprocess.run,
        ["curl", "-sS", "-H", "Content-Type: application/json", "-d", body,
         f"{stack.http_url}/v1/workflows/reflection"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout)["workflow"]["state"] == "WORKFLOW_STATE_SUCCEEDED"


async def test_a_cache_hit_carries_its_own_trace_id(http: httpx.AsyncClient):
    """A repeat is answered from the cache, and its workflow still names the trace of the
    request that asked (the one in X-Trace-Id), not none and not the first request's."""
    topic = "Which retrieval tricks help agents cite their sources?"
    first = await http.post("/v1/workflows/reflection", json={"topic": topic})
    # The same topic in other bytes: a new workflow from the cache, not a replay.
    again = await http.post("/v1/workflows/reflection", json={"topic": f"{topic} "})
    assert first.status_code == again.status_code == 200
    workflow = again.json()["workflow"]
    assert workflow["cache"]["hit"] is True
    assert workflow["traceId"] == again.headers["x-trace-id"]
    assert workflow["traceId"] != first.json()["workflow"]["traceId"]


async def test_an_exact_repeat_is_replayed(http: httpx.AsyncClient):
    """The same request again within PONDER_GATEWAY_REPLAY_SECONDS gets the same workflow,
    byte for byte, saying so in a header; the request still has its own trace; the workflow
    is the recorded one; REFRESH is never replayed."""
    body = {"topic": f"Do agents reflect better with critics? ({uuid.uuid4().hex[:8]})"}
    first = await http.post("/v1/workflows/reflection", json=body)
    again = await http.post("/v1/workflows/reflection", json=body)
    assert first.status_code == again.status_code == 200
    assert "grpc-metadata-x-ponder-replay-age" not in first.headers
    assert again.content == first.content
    assert 0 <= float(again.headers["grpc-metadata-x-ponder-replay-age"]) < 30
    workflow = again.json()["workflow"]
    assert again.headers["x-trace-id"] != workflow["traceId"]  # this request's, not the run's
    fetched = await http.get(f"/v1/{workflow['name']}")
    assert fetched.json()["workflow"]["name"] == workflow["name"]
    refresh = {**body, "parameters": {"cachePolicy": "CACHE_POLICY_REFRESH"}}
    refreshed = [await http.post("/v1/workflows/reflection", json=refresh) for _ in range(2)]
    names = {r.json()["workflow"]["name"] for r in refreshed} | {workflow["name"]}
    assert len(names) == 3
    assert all("grpc-metadata-x-ponder-replay-age" not in r.headers for r in refreshed)
    latest = await http.post("/v1/workflows/reflection", json=body)
    assert (
        latest.json()["workflow"]["cache"]["sourceWorkflow"]
        == refreshed[-1].json()["workflow"]["name"]
    )
