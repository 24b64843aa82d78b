"""Schemathesis against the REST facade's own /openapi.json: no 5xx, no schema violations.

The schemathesis CLI runs in a subprocess (the services live in this test's event loop, so
a blocking call would deadlock them) against a gateway of its own on the in-process stack's
services, with rate limiting off so that every request reaches the handlers. Its NDJSON event
report is read back to count the requests it sent and to list what failed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ponder_gateway.principals import Scope
from ponder_gateway.service import GatewayModule
from tests.conftest import InProcessStack
from tests.support.gateways import gateway


# A fixed seed: the same requests on every run. Longer runs with other seeds can report one
# more ST201 (negative_data_rejection) that is no bug: `null` for a field is accepted as its
# default value, as the proto3 JSON mapping and grpc-gateway require, and the document does
# not spell that out for every property.
SEED = 20_240_501
TOPIC = "How do language model agents use self-reflection to improve their answers?"
# Per operation and phase. With 17 operations the coverage phase alone sends ~1,250
# requests; 50 fuzzed examples each bring the total to ~2,400 in about 30 s on two cores.
MAX_EXAMPLES = 50
MIN_REQUESTS = 1_000
RUN_TIMEOUT_S = 150.0
# Workflows on the offline provider finish in well under a second; a WatchWorkflow stream
# lasts as long as its workflow runs.
REQUEST_TIMEOUT_S = 30
STREAMING = {
    "WorkflowService_WatchWorkflow": "GET /v1/workflows/{workflow}:watch",
    "ReflectionService_StreamReflect": "POST /v1/reflection:streamReflect",
}

# Schemathesis configuration (schemathesis.toml). The command line names no check to run
# (--checks would override the per-operation settings here); all of them run by default.
CONFIG = f"""
# The Allow header of OPTIONS lists the methods the concrete URL routes to, as grpc-gateway
# matches it, and these URLs are matched by two documented templates: /v1/workflows/reflection
# and /v1/workflows/research are also /v1/workflows/{{workflow}} (GET GetWorkflow), and so is
# /v1/workflows/x:cancel (a pattern without a verb takes the verb into its last segment). The
# check compares the header with the methods of the one template it generated the URL from,
# which cannot express overlapping templates: `Allow: GET, POST` is the truth for them.
[[operations]]
include-operation-id = [
  "WorkflowService_RunReflectionWorkflow",
  "WorkflowService_RunResearchWorkflow",
  "WorkflowService_CancelWorkflow",
]
checks.allow_header_conformance.enabled = false

# Streams are newline-delimited JSON, labelled application/json by default as grpc-gateway does;
# a stream of several messages is then no single JSON document, which schemathesis's JSON
# reader refuses. Asking for application/x-ndjson gives the same bytes under their own media
# type, which the hooks below validate line by line against the documented line schema.
# (text/event-stream is not requested: in OpenAPI 3.1 its `schema` describes the whole body,
# a string, while schemathesis reads it as the schema of each event.)
[[operations]]
include-operation-id = {json.dumps(list(STREAMING))}
headers = {{ Accept = "application/x-ndjson" }}
"""

# Loaded by the schemathesis process (SCHEMATHESIS_HOOKS): an NDJSON reader for the built-in
# response_schema_conformance check (which validates the first line), a check that validates
# every further line the same way, and one that every 400 INVALID_ARGUMENT names the offending
# field(s) in a google.rpc.BadRequest.
HOOKS = """
import json

import schemathesis
from schemathesis.core.transport import Response


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx, response):
    lines = [json.loads(line) for line in response.content.splitlines() if line.strip()]
    if not lines:
        raise ValueError("an empty stream: not even one line")
    return lines[0]


@schemathesis.check
def ndjson_lines_conformance(ctx, response, case):
    kind = (response.headers.get("content-type") or [""])[0]
    if not kind.startswith("application/x-ndjson"):
        return None
    for line in response.content.splitlines()[1:]:
        if line.strip():
            one = Response(
                status_code=response.status_code,
                headers=response.headers,
                content=line,
                request=response.request,
                elapsed=response.elapsed,
                verify=response.verify,
            )
            case.operation.validate_response(one, case=case)
    return None


@schemathesis.check
def rejection_names_the_field(ctx, response, case):
    if response.status_code != 400:
        return None
    body = json.loads(response.content)
    if body.get("code") != 3:  # FAILED_PRECONDITION is 400 too, and about state, not fields
        return None
    violations = [
        violation
        for detail in body.get("details", [])
        if detail.get("@type", "").endswith("/google.rpc.BadRequest")
        for violation in detail.get("fieldViolations", [])
    ]
    if not violations or not all(v.get("field") and v.get("description") for v in violations):
        raise AssertionError(f"a 400 that names no field: {response.content[:300]!r}")
    return None
"""


@dataclass
class Outcome:
    """What the NDJSON event report says about a run."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    streams: Counter[str] = field(default_factory=Counter)  # 200 NDJSON streams by operation


def read_report(path: Path) -> Outcome:
    """Requests sent, their statuses, 5xx responses and failed checks, from the events."""
    outcome = Outcome()
    for line in path.read_text().splitlines():
        event: dict[str, Any] = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished["recorder"]
        for interaction in recorder.get("interactions", {}).values():
            outcome.requests += 1
            response = interaction.get("response")
            if response is None:
                continue
            status = response["status_code"]
            outcome.statuses[status] += 1
            request = interaction["request"]
            if status >= 500:
                body = base64.b64decode(response.get("content", {}).get("$base64", "")).decode(
                    errors="replace"
                )
                outcome.server_errors.append(
                    f"{request['method']} {request['uri']} -> {status} {body[:300]}"
                )
            if response["headers"].get("content-type") == ["application/x-ndjson"]:
                outcome.streams[recorder["label"]] += status == 200
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check["status"] != "success":
                    outcome.failures.append(
                        f"{recorder['label']} [{case_id}] {check['name']}: {check['status']}"
                    )
    return outcome


@pytest.mark.timeout(240)
async def test_schemathesis_finds_no_server_errors_or_schema_violations(
    stack: InProcessStack, tmp_path: Path
) -> None:
    """Every phase (examples, coverage, fuzzing, stateful) with every check but
    positive_data_acceptance: at least 1,000 requests, no 5xx, no response that breaks the
    document (status, content type, headers, schema), no invalid request accepted, and every
    INVALID_ARGUMENT names the field it rejects."""
    server = await gateway(
        stack, tmp_path, rate_limit_per_second=0, http_port=0,
        # every scope but workflows.delete: a DeleteWorkflow of the one seeded workflow early
        # in the run would leave GetWorkflow, CancelWorkflow and WatchWorkflow nothing to find
        # (deletion has its own tests: test_delete_workflow.py)
        expose_internal_services=True,
        anonymous_scopes=frozenset(Scope) - {Scope.WORKFLOWS_DELETE},
    )  # fmt: skip
    try:
        module = server.service
        assert isinstance(module, GatewayModule)
        assert module.http is not None
        base_url = f"http://127.0.0.1:{module.http.port}"
        # One finished workflow: schemathesis takes its name from the responses that list it,
        # so GetWorkflow, CancelWorkflow and WatchWorkflow are also called on a real resource.
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            seeded = await http.post("/v1/workflows/reflection", json={"topic": TOPIC})
            assert seeded.status_code == 200, seeded.text
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG)
        hooks = tmp_path / "ndjson_hooks.py"
        hooks.write_text(HOOKS)
        report = tmp_path / "events.ndjson"
        command = [
            str(Path(sys.executable).parent / "st"),
            "--config-file", str(config),
            "run", f"{base_url}/openapi.json",
            "--url", base_url,
            "--phases", "examples,coverage,fuzzing,stateful",
            # All checks run by default. positive_data_acceptance expects every schema-valid
            # request to succeed, but the services check what the schema does not say (a
            # topic or namespace that is not blank, workflow ids of 3 to 63 lowercase letters,
            # digits and hyphens, a kind other than UNSPECIFIED, page sizes up to 100, at
            # least one text to embed) and rightly answer 400 INVALID_ARGUMENT.
            "--exclude-checks", "positive_data_acceptance",
            "--seed", str(SEED),
            "--max-examples", str(MAX_EXAMPLES),
            "--workers", "2",
            "--continue-on-failure",
            "--request-timeout", str(REQUEST_TIMEOUT_S),
            "--generation-database", "none",
            "--report", "ndjson",
            "--report-ndjson-path", str(report),
            "--no-color",
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=tmp_path,
            env={**_environment(), "SCHEMATHESIS_HOOKS": str(hooks)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            output, _ = await process.communicate()
            pytest.fail(f"schemathesis ran over {RUN_TIMEOUT_S} s:\n{output.decode()[-20_000:]}")
    finally:
        await server.stop(0)
    text = output.decode(errors="replace")
    outcome = read_report(report) if report.exists() else Outcome()
    summary = f"{outcome.requests} requests, statuses {dict(sorted(outcome.statuses.items()))}"
    assert process.returncode == 0, f"schemathesis failed ({summary}):\n{text[-20_000:]}"
    assert outcome.requests >= MIN_REQUESTS, summary
    assert not outcome.server_errors, "\n".join([summary, *outcome.server_errors])
    assert not outcome.failures, "\n".join([summary, *outcome.failures, text[-20_000:]])
    # Both streams were read as NDJSON and validated line by line, not skipped (the workflow
    # made above gives schemathesis a name to watch).
    assert all(outcome.streams[label] > 0 for label in STREAMING.values()), outcome.streams


def _environment() -> dict[str, str]:
    """This process's environment, without colours or a hooks module from the caller."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    environment["NO_COLOR"] = "1"
    return environment
