"""The API contract: HTTP annotations and resource names (enum zero values and the freshness of
the generated code are `make lint`'s: buf STANDARD and genproto.py --check)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api import annotations_pb2, field_behavior_pb2, http_pb2, resource_pb2
from google.protobuf.descriptor import (
    FileDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

from ponder.embedding.v1 import embedding_service_pb2
from ponder.reflection.v1 import reflection_service_pb2
from ponder.research.v1 import research_service_pb2
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2


ROOT = Path(__file__).resolve().parents[2]
FILES: list[FileDescriptor] = [
    module.DESCRIPTOR
    for module in (
        document_pb2,
        research_service_pb2,
        reflection_service_pb2,
        embedding_service_pb2,
        workflow_service_pb2,
    )
]
SERVICES: list[ServiceDescriptor] = [s for f in FILES for s in f.services_by_name.values()]


def _http_rule(method: MethodDescriptor) -> http_pb2.HttpRule:
    rule: http_pb2.HttpRule = method.GetOptions().Extensions[annotations_pb2.http]
    return rule


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.full_name)
def test_every_method_has_an_http_binding_under_v1(service: ServiceDescriptor):
    """Every RPC is annotated with google.api.http, on a /v1/ path."""
    for method in service.methods:
        rule = _http_rule(method)
        pattern = rule.WhichOneof("pattern")
        assert pattern is not None, method.full_name
        assert getattr(rule, pattern).startswith("/v1/"), method.full_name


def test_seed_parity_route():
    """The earlier API's call is POST /v1/workflows/reflection with the whole body."""
    service = workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"]
    rule = _http_rule(service.methods_by_name["RunReflectionWorkflow"])
    assert (rule.post, rule.body) == ("/v1/workflows/reflection", "*")
    request = workflow_service_pb2.RunReflectionWorkflowRequest.DESCRIPTOR
    topic = request.fields_by_name["topic"]
    behaviors = topic.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    assert field_behavior_pb2.REQUIRED in behaviors


def test_long_running_methods_follow_resource_oriented_design():
    """Get/Cancel/Watch address `workflows/*` resources; cancel is a custom verb."""
    service = workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"]
    rules = {m.name: _http_rule(m) for m in service.methods}
    assert rules["GetWorkflow"].get == "/v1/{name=workflows/*}"
    assert rules["CancelWorkflow"].post == "/v1/{name=workflows/*}:cancel"
    assert rules["WatchWorkflow"].get == "/v1/{name=workflows/*}:watch"
    assert service.methods_by_name["WatchWorkflow"].server_streaming
    resource = workflow_service_pb2.Workflow.DESCRIPTOR.GetOptions().Extensions[
        resource_pb2.resource
    ]
    assert list(resource.pattern) == ["workflows/{workflow}"]
