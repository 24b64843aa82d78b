"""The OpenAPI 3.1 document of the REST facade, and the proto comments it is written from."""

from __future__ import annotations

import copy
import json
import pathlib
import textwrap
from importlib import resources
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from google.api import field_behavior_pb2
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_tools import protoc
from schemathesis.core.result import Ok

from ponder.embedding.v1 import embedding_service_pb2
from ponder.reflection.v1 import reflection_service_pb2
from ponder.research.v1 import research_service_pb2
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2
from ponder_rest.comments import DescriptorComments, clean_comment
from ponder_rest.openapi import build_openapi, markdown_of, summary_of
from ponder_rest.routes import Route, build_routes
from ponder_rest.template import parse_template


ROOT = pathlib.Path(__file__).resolve().parents[3]
WKT_INCLUDE = str(resources.files("grpc_tools") / "_proto")
REF = "#/components/schemas/"
INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
STATUS_REF = {"$ref": REF + "google.rpc.Status"}

SERVICES = [
    workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"],
    research_service_pb2.DESCRIPTOR.services_by_name["ResearchService"],
    reflection_service_pb2.DESCRIPTOR.services_by_name["ReflectionService"],
    embedding_service_pb2.DESCRIPTOR.services_by_name["EmbeddingService"],
]

# operationId -> (HTTP method, OpenAPI path, path parameters, query parameters, body)
OPERATIONS = {
    "WorkflowService_RunReflectionWorkflow": ("post", "/v1/workflows/reflection", [], [], "*"),
    "WorkflowService_RunResearchWorkflow": ("post", "/v1/workflows/research", [], [], "*"),
    "WorkflowService_RunWorkflow": ("post", "/v1/workflows:run", [], [], "workflow"),
    "WorkflowService_CreateWorkflow": (
        "post",
        "/v1/workflows",
        [],
        ["workflowId", "requestId"],
        "workflow",
    ),
    "WorkflowService_GetWorkflow": ("get", "/v1/{name}", ["name"], [], ""),
    "WorkflowService_ListWorkflows": (
        "get",
        "/v1/workflows",
        [],
        ["pageSize", "pageToken", "filter"],
        "",
    ),
    "WorkflowService_CancelWorkflow": ("post", "/v1/{name}:cancel", ["name"], [], "*"),
    "WorkflowService_WatchWorkflow": ("get", "/v1/{name}:watch", ["name"], ["afterSequence"], ""),
    "ResearchService_SearchSources": ("post", "/v1/research:search", [], [], "*"),
    "ResearchService_GetLibrary": ("get", "/v1/library", [], ["tenant"], ""),
    "ReflectionService_Reflect": ("post", "/v1/reflection:reflect", [], [], "*"),
    "ReflectionService_StreamReflect": ("post", "/v1/reflection:streamReflect", [], [], "*"),
    "EmbeddingService_EmbedTexts": ("post", "/v1/embeddings:embed", [], [], "*"),
    "EmbeddingService_RankDocuments": ("post", "/v1/embeddings:rank", [], [], "*"),
    "EmbeddingService_LookupCache": ("post", "/v1/cache:lookup", [], [], "*"),
    "EmbeddingService_StoreCache": ("post", "/v1/cache:store", [], [], "*"),
    "EmbeddingService_InvalidateCache": ("post", "/v1/cache:invalidate", [], [], "*"),
    "EmbeddingService_GetCacheStats": ("get", "/v1/cache/stats", [], ["namespace"], ""),
}

# A proto that exercises what the Ponder protos do not: maps, recursion, oneofs, every
# well-known type, INPUT_ONLY, nested query parameters, response_body, additional bindings.
LIBRARY_PROTO = """
syntax = "proto3";

package ponder_rest_testing.openapi.v1;

import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// Shelves of a library.
service LibraryService {
  // Gets a shelf by name. Archived shelves have a longer name.
  rpc GetShelf(GetShelfRequest) returns (Shelf) {
    option (google.api.http) = {
      get: "/v1/{name=shelves/*}"
      additional_bindings {get: "/v1/{name=archives/*/cases/*}"}
    };
  }
  // Searches shelves.
  rpc SearchShelves(SearchShelvesRequest) returns (SearchShelvesResponse) {
    option (google.api.http) = {
      get: "/v1/shelves:search"
      response_body: "shelves"
    };
  }
  // Updates a shelf.
  rpc UpdateShelf(UpdateShelfRequest) returns (Shelf) {
    option (google.api.http) = {
      patch: "/v1/{shelf.name=shelves/*}"
      body: "shelf"
    };
  }
  // Deletes a shelf.
  rpc DeleteShelf(DeleteShelfRequest) returns (google.protobuf.Empty) {
    option deprecated = true;
    option (google.api.http) = {delete: "/v1/{name=shelves/*}"};
  }
}

// A shelf of books.
message Shelf {
  // Kind of a shelf.
  enum Kind {
    // Not set.
    KIND_UNSPECIFIED = 0;
    // Made of wood.
    KIND_WOOD = 1;
  }
  // A label on a shelf.
  message Label {
    // Text of the label.
    string text = 1;
  }

  // Resource name, "shelves/{shelf}".
  string name = 1 [(google.api.field_behavior) = IDENTIFIER];
  // What the shelf is made of.
  Kind kind = 2 [(google.api.field_behavior) = REQUIRED];
  // A password that is never returned.
  string secret = 3 [(google.api.field_behavior) = INPUT_ONLY];
  // Books per genre.
  map<string, int64> counts = 4;
  // Labels by position.
  map<int32, Label> labels_by_position = 5;
  // The shelf this one is part of.
  Shelf parent = 6;
  // Size in bytes.
  uint64 size = 7 [(google.api.field_behavior) = OUTPUT_ONLY];
  // A photo.
  bytes photo = 8;
  // Where the shelf stands.
  oneof location {
    // A room.
    string room = 9 [(google.api.field_behavior) = REQUIRED];
    // A building number.
    int32 building = 10;
  }
  // A note, with presence.
  optional string note = 11;
  // When it was built.
  google.protobuf.Timestamp create_time = 12;
  // How long it lasts.
  google.protobuf.Duration lifetime = 13;
  // Fields of interest.
  google.protobuf.FieldMask mask = 14;
  // Free-form attributes.
  google.protobuf.Struct attributes = 15;
  // Anything.
  google.protobuf.Value extra = 16;
  // A list of anything.
  google.protobuf.ListValue items = 17;
  // A typed payload.
  google.protobuf.Any payload = 18;
  // A big wrapped number.
  google.protobuf.Int64Value big = 19;
  // A wrapped alias.
  google.protobuf.StringValue alias = 20;
  // Always null.
  google.protobuf.NullValue nothing = 21;
  // A wrapped flag.
  google.protobuf.BoolValue flag = 22;
  // Do not use.
  string legacy = 23 [deprecated = true];
  // A checksum.
  fixed64 checksum = 24;
  // Weight in kilograms.
  double weight = 25;
  // All labels.
  repeated Label labels = 26;
}

// Request for GetShelf.
message GetShelfRequest {
  // The shelf's name.
  string name = 1 [(google.api.field_behavior) = REQUIRED];
  // Fields to return.
  google.protobuf.FieldMask read_mask = 2;
}

// Request for SearchShelves.
message SearchShelvesRequest {
  // Words to look for.
  string query = 1 [(google.api.field_behavior) = REQUIRED];
  // Kinds to include.
  repeated Shelf.Kind kinds = 2;
  // A filter.
  ShelfFilter filter = 3;
  // Most shelves to return.
  int64 page_size = 4;
  // Tags (not expressible as a query parameter).
  map<string, string> tags = 5;
  // Labels (not expressible as query parameters).
  repeated Shelf.Label labels = 6;
  // A struct (not expressible as query parameters).
  google.protobuf.Struct extra = 7;
  // Built after.
  google.protobuf.Timestamp since = 8;
  // Time allowed.
  google.protobuf.Duration timeout = 9;
}

// A filter, possibly nested.
message ShelfFilter {
  // Smallest size.
  uint64 min_size = 1 [(google.api.field_behavior) = REQUIRED];
  // Another filter that must hold too.
  ShelfFilter also = 2;
  // Flags to match.
  repeated bool flags = 3;
}

// Response for SearchShelves.
message SearchShelvesResponse {
  // The shelves found.
  repeated Shelf shelves = 1;
}

// Request for UpdateShelf.
message UpdateShelfRequest {
  // The shelf; its name says which one.
  Shelf shelf = 1 [(google.api.field_behavior) = REQUIRED];
  // Fields to update.
  google.protobuf.FieldMask update_mask = 2;
}

// Request for DeleteShelf.
message DeleteShelfRequest {
  // The shelf's name.
  string name = 1;
  // Delete it even when it holds books.
  bool force = 2;
}
"""
LIBRARY = "ponder_rest_testing.openapi.v1"
LIBRARY_FILE = "ponder_rest_testing/openapi/v1/library.proto"


def compile_descriptor_set(include: pathlib.Path, files: list[str], out: pathlib.Path) -> bytes:
    """A FileDescriptorSet of `files` with source info and imports, as protoc writes it."""
    args = [
        "protoc",
        f"-I{include}",
        f"-I{ROOT / 'third_party'}",
        f"-I{WKT_INCLUDE}",
        "--include_source_info",
        "--include_imports",
        f"--descriptor_set_out={out}",
        *files,
    ]
    assert protoc.main(args) == 0, "protoc failed"
    return out.read_bytes()


@pytest.fixture(scope="module")
def ponder_comments(tmp_path_factory: pytest.TempPathFactory) -> DescriptorComments:
    """The comments of the Ponder protos: the shipped descriptor set, or a fresh one."""
    shipped = resources.files("ponder") / "descriptors.binpb"
    if shipped.is_file():
        return DescriptorComments.from_resource("ponder")
    protos = ROOT / "protos"
    files = sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))
    out = tmp_path_factory.mktemp("descriptors") / "ponder.binpb"
    return DescriptorComments.from_bytes(compile_descriptor_set(protos, files, out))


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return build_routes(SERVICES)


@pytest.fixture(scope="module")
def document(routes: list[Route], ponder_comments: DescriptorComments) -> dict[str, Any]:
    return build_openapi(
        routes,
        ponder_comments,
        title="Ponder",
        version="1.2.3",
        description="Research and reflection workflows.",
        servers=["http://localhost:8080", {"url": "/", "description": "this server"}],
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, DescriptorComments]:
    """The LibraryService descriptor (added to the default pool) and its comments."""
    directory = tmp_path_factory.mktemp("library")
    (directory / LIBRARY_FILE).parent.mkdir(parents=True)
    (directory / LIBRARY_FILE).write_text(LIBRARY_PROTO)
    raw = compile_descriptor_set(directory, [LIBRARY_FILE], directory / "library.binpb")
    # The library's imports must be in the default pool first: import their modules.
    assert {m.DESCRIPTOR.name for m in (empty_pb2, field_mask_pb2, wrappers_pb2)} == {
        "google/protobuf/empty.proto",
        "google/protobuf/field_mask.proto",
        "google/protobuf/wrappers.proto",
    }
    pool = descriptor_pool.Default()
    try:
        file = pool.FindFileByName(LIBRARY_FILE)
    except KeyError:
        files = descriptor_pb2.FileDescriptorSet.FromString(raw).file
        (proto,) = [f for f in files if f.name == LIBRARY_FILE]
        file = pool.AddSerializedFile(proto.SerializeToString())
    return file.services_by_name["LibraryService"], DescriptorComments.from_bytes(raw)


@pytest.fixture(scope="module")
def library_document(library: tuple[Any, DescriptorComments]) -> dict[str, Any]:
    service, comments = library
    return build_openapi(build_routes([service]), comments, title="Library", version="1")


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation)."""
    return {
        op["operationId"]: (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def parameters(operation: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == where}


def schema_validator(document: dict[str, Any], name: str) -> jsonschema_rs.Validator:
    """A validator of the component schema `name`, its $refs resolved within the document."""
    return jsonschema_rs.validator_for(
        {"$ref": REF + name, "components": document["components"]}, validate_formats=True
    )


def to_json(message: Message, *, proto_names: bool = False) -> Any:
    """What the facade writes: proto3 JSON with unpopulated fields emitted."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=proto_names,
        always_print_fields_with_no_presence=True,
    )


def descriptor_of(name: str) -> Descriptor:
    return descriptor_pool.Default().FindMessageTypeByName(name)


# --- the document as a whole ---------------------------------------------------------------


def test_schemathesis_loads_and_validates_the_document(document: dict[str, Any]) -> None:
    """The document passes the OpenAPI 3.1 meta-schema and every operation loads."""
    schema = schemathesis.openapi.from_dict(copy.deepcopy(document))
    schema.validate()
    loaded = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in loaded)
    labels = sorted(result.ok().label for result in loaded if isinstance(result, Ok))
    expected = sorted(f"{m.upper()} {p}" for m, p, *_ in OPERATIONS.values())
    assert labels == expected


def test_schemathesis_rejects_a_broken_copy(document: dict[str, Any]) -> None:
    """The validity check above has teeth: a parameter in a non-existent place fails it."""
    broken = copy.deepcopy(document)
    broken["paths"]["/v1/workflows"]["get"]["parameters"][0]["in"] = "body"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


def test_document_is_plain_json(document: dict[str, Any]) -> None:
    """Serving it is json.dumps: nothing in it needs a custom encoder, and it round-trips."""
    assert json.loads(json.dumps(document)) == document


def test_info_servers_and_tags(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {
        "title": "Ponder",
        "version": "1.2.3",
        "description": "Research and reflection workflows.",
    }
    assert document["servers"] == [
        {"url": "http://localhost:8080"},
        {"url": "/", "description": "this server"},
    ]
    tags = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    assert list(tags) == [
        "WorkflowService",
        "ResearchService",
        "ReflectionService",
        "EmbeddingService",
    ]
    assert tags["WorkflowService"].startswith(
        "Ponder's public API: research-and-reflection workflows, served by the gateway over "
        "gRPC and\nas REST/JSON."
    )
    assert tags["EmbeddingService"].startswith(
        "Sentence embeddings, similarity ranking and a persistent semantic cache."
    )


# --- operations ----------------------------------------------------------------------------


def test_every_route_is_one_operation(document: dict[str, Any], routes: list[Route]) -> None:
    """Path, method, operationId, tag, path and query parameters and body of each route."""
    found = operations(document)
    assert set(found) == set(OPERATIONS) == {route.operation_id for route in routes}
    for route in routes:
        method, path, operation = found[route.operation_id]
        want_method, want_path, path_params, query_params, body = OPERATIONS[route.operation_id]
        assert (
            (method, path)
            == (want_method, want_path)
            == (
                route.http_method.lower(),
                route.template.openapi_path,
            )
        )
        assert operation["tags"] == [route.method.containing_service.name]
        assert list(parameters(operation, "path")) == path_params
        assert list(parameters(operation, "query")) == query_params
        assert route.body == body
        assert ("requestBody" in operation) == bool(body)
        if body:
            assert operation["requestBody"]["required"] is True
            assert list(operation["requestBody"]["content"]) == ["application/json"]


def test_summary_and_description_come_from_the_method_comment(document: dict[str, Any]) -> None:
    found = operations(document)
    get = found["WorkflowService_GetWorkflow"][2]
    assert get["summary"] == "Returns a workflow by name."
    assert "description" not in get  # the whole comment is the summary
    run = found["WorkflowService_RunReflectionWorkflow"][2]
    assert run["summary"] == (
        "Runs a reflection workflow on a topic to completion and returns the finished workflow."
    )
    assert run["description"].endswith(
        "The REST form keeps the earlier API's shape: `POST /v1/workflows/reflection` with body\n"
        '`{"topic": "..."}`.'
    )
    cancel = found["WorkflowService_CancelWorkflow"][2]
    assert cancel["summary"] == (
        "Cancels a pending or running workflow and stops its downstream work."
    )


def test_path_parameter_of_a_resource_name(document: dict[str, Any]) -> None:
    """`{name=workflows/*}` is the parameter `name`, with the pattern of its segments."""
    operation = operations(document)["WorkflowService_GetWorkflow"][2]
    (name,) = operation["parameters"]
    assert name["in"] == "path"
    assert name["required"] is True
    assert name["schema"] == {"type": "string", "pattern": "^workflows/[^/]+$"}
    assert name["description"].startswith('Name of the workflow, "workflows/{workflow}".')
    assert "`workflows/*`" in name["description"]


def test_query_parameters_have_types_and_comments(document: dict[str, Any]) -> None:
    listing = parameters(operations(document)["WorkflowService_ListWorkflows"][2], "query")
    assert listing["pageSize"]["schema"] == {"type": "integer", "format": "int32"}
    assert listing["pageSize"]["required"] is False
    assert listing["pageSize"]["description"] == (
        "Most workflows to return. 0 means 20; at most 100."
    )
    assert listing["filter"]["schema"] == {"type": "string"}
    assert listing["filter"]["description"].startswith("Filter (an AIP-160 subset).")
    create = parameters(operations(document)["WorkflowService_CreateWorkflow"][2], "query")
    assert create["requestId"]["description"].startswith("Idempotency key (a UUID).")
    stats = parameters(operations(document)["EmbeddingService_GetCacheStats"][2], "query")
    assert stats["namespace"]["schema"] == {"type": "string"}


def test_nested_repeated_and_enum_query_parameters(ponder_comments: DescriptorComments) -> None:
    """Without a body every leaf is a query parameter: dotted names, exploded arrays, enums."""
    method = SERVICES[0].methods_by_name["RunReflectionWorkflow"]
    route = Route(method, "GET", parse_template("/v1/reflect"), "", "", 0)
    names = ["sources", "max_sources", "max_iterations", "score_threshold", "cache_policy"]
    camel = ["sources", "maxSources", "maxIterations", "scoreThreshold", "cachePolicy"]
    for proto_names, leaves in [(False, camel), (True, names)]:
        prefix = "parameters."
        max_sources = prefix + leaves[1]
        document = build_openapi(
            [route], ponder_comments, title="t", version="1", use_proto_names=proto_names
        )
        query = parameters(document["paths"]["/v1/reflect"]["get"], "query")
        assert list(query) == ["topic", *(prefix + leaf for leaf in leaves)]
        assert query["topic"]["required"] is True
        assert query[max_sources]["schema"] == {"type": "integer", "format": "int32"}
        assert query[max_sources]["required"] is False
        assert query[max_sources]["description"] == (
            "Most source documents to use. 0 means 5; 1 to 20."
        )
        sources = query[prefix + "sources"]
        assert sources["schema"] == {
            "type": "array",
            "items": {"type": "string", "enum": list(document_pb2.SourceKind.keys())},
        }
        assert (sources["style"], sources["explode"]) == ("form", True)
        threshold = "scoreThreshold" if not proto_names else "score_threshold"
        assert query[prefix + threshold]["schema"] == {"type": "number", "format": "float"}
        policy = "cachePolicy" if not proto_names else "cache_policy"
        assert query[prefix + policy]["schema"]["enum"] == list(
            workflow_service_pb2.CachePolicy.keys()
        )
        assert schemathesis.openapi.from_dict(document).validate() is None


def test_body_star_documents_the_whole_request(document: dict[str, Any]) -> None:
    operation = operations(document)["WorkflowService_RunReflectionWorkflow"][2]
    body = operation["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": REF + "ponder.workflow.v1.RunReflectionWorkflowRequest"
    }
    assert body["description"] == "Request for WorkflowService.RunReflectionWorkflow."


def test_body_star_leaves_out_the_fields_bound_by_the_path(document: dict[str, Any]) -> None:
    """CancelWorkflow binds `name` from the path, so its body schema has no `name`."""
    body = operations(document)["WorkflowService_CancelWorkflow"][2]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["type"] == "object"
    assert schema["properties"] == {}
    assert "required" not in schema


def test_body_field_documents_that_field(document: dict[str, Any]) -> None:
    operation = operations(document)["WorkflowService_CreateWorkflow"][2]
    body = operation["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["$ref"] == REF + "ponder.workflow.v1.Workflow"
    assert body["description"] == (
        "The workflow to start: `kind` and `topic` are required, `parameters` optional."
    )
    assert "workflow" not in parameters(operation, "query")


def test_unary_responses(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document).values():
        responses = operation["responses"]
        assert set(responses) == {"200", "default"}, (method, path)
        assert responses["default"]["content"] == {"application/json": {"schema": STATUS_REF}}
        for code in (400, 404, 405, 415, 429, 499, 503, 504):
            assert f"- {code}: " in responses["default"]["description"]
    get = operations(document)["WorkflowService_GetWorkflow"][2]["responses"]["200"]
    assert get["content"] == {
        "application/json": {"schema": {"$ref": REF + "ponder.workflow.v1.GetWorkflowResponse"}}
    }
    assert get["description"] == "Response for WorkflowService.GetWorkflow."


@pytest.mark.parametrize(
    ("operation_id", "response"),
    [
        ("WorkflowService_WatchWorkflow", "ponder.workflow.v1.WatchWorkflowResponse"),
        ("ReflectionService_StreamReflect", "ponder.reflection.v1.StreamReflectResponse"),
    ],
)
def test_streaming_documents_both_framings(
    document: dict[str, Any], operation_id: str, response: str
) -> None:
    """NDJSON lines `{"result"}` / `{"error"}`, and Server-Sent Events."""
    ok = operations(document)[operation_id][2]["responses"]["200"]
    content = ok["content"]
    assert set(content) == {"application/json", "application/x-ndjson", "text/event-stream"}
    line_ref = content["application/json"]["schema"]["$ref"]
    assert content["application/x-ndjson"]["schema"]["$ref"] == line_ref
    line = document["components"]["schemas"][line_ref.removeprefix(REF)]
    assert line["properties"] == {"result": {"$ref": REF + response}, "error": STATUS_REF}
    assert (line["minProperties"], line["maxProperties"]) == (1, 1)
    assert content["text/event-stream"]["schema"]["type"] == "string"
    for framing in ('{"result": <message>}', '{"error": ', "text/event-stream", "event: error"):
        assert framing in ok["description"]

    lines = schema_validator(document, line_ref.removeprefix(REF))
    status = status_pb2.Status(code=4, message="deadline exceeded")
    assert lines.is_valid({"error": to_json(status)})
    assert not lines.is_valid({"result": {}, "error": to_json(status)})
    assert not lines.is_valid({})


def test_watch_events_validate_against_the_line_schema(document: dict[str, Any]) -> None:
    """A real WatchWorkflow event, as the facade frames it, matches the documented line."""
    event = workflow_service_pb2.WatchWorkflowResponse(
        event_type=workflow_service_pb2.WORKFLOW_EVENT_TYPE_STATE_CHANGED,
        workflow=workflow_service_pb2.Workflow(
            name="workflows/w1", state=workflow_service_pb2.WORKFLOW_STATE_RUNNING
        ),
        sequence=7,
    )
    event.event_time.FromSeconds(1_700_000_000)
    lines = schema_validator(document, "StreamResult_ponder.workflow.v1.WatchWorkflowResponse")
    assert lines.is_valid({"result": to_json(event)})
    assert to_json(event)["sequence"] == "7"


# --- component schemas ---------------------------------------------------------------------


def test_component_schemas_are_valid_json_schema(document: dict[str, Any]) -> None:
    """Each component passes the 2020-12 meta-schema, and compiles with every $ref resolved."""
    schemas = document["components"]["schemas"]
    assert len(schemas) > 40
    for name, schema in schemas.items():
        jsonschema_rs.meta.validate(schema)
        schema_validator(document, name)  # raises on an unresolvable $ref


def test_every_message_of_the_api_is_a_component(
    document: dict[str, Any], routes: list[Route]
) -> None:
    """Responses, and requests sent whole as the body, are components; requests read from
    the path and query only are not."""
    schemas = document["components"]["schemas"]
    for route in routes:
        assert route.method.output_type.full_name in schemas
        whole_body = route.body == "*" and not route.template.variables
        assert (route.method.input_type.full_name in schemas) == whole_body, route.operation_id
    for name in (
        "ponder.type.v1.Document",
        "ponder.type.v1.TokenUsage",
        "ponder.type.v1.SourceKind",
        "ponder.workflow.v1.WorkflowState",
        "ponder.reflection.v1.ReflectionIteration",
        "google.rpc.Status",
    ):
        assert name in schemas


def test_field_descriptions_are_the_proto_comments(
    document: dict[str, Any], ponder_comments: DescriptorComments
) -> None:
    """Every property of every message carries its field's comment, verbatim."""
    schemas = document["components"]["schemas"]
    checked = 0
    for name, schema in schemas.items():
        if schema.get("type") != "object" or name.startswith("StreamResult_"):
            continue
        descriptor = descriptor_of(name)
        message_comment = markdown_of(ponder_comments.comment(name))
        assert message_comment
        assert schema["description"].startswith(message_comment)
        for field in descriptor.fields:
            comment = markdown_of(ponder_comments.comment(field.full_name))
            if comment:
                assert schema["properties"][field.json_name]["description"] == comment
                checked += 1
    assert checked > 150


def test_a_few_real_descriptions(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    workflow = schemas["ponder.workflow.v1.Workflow"]
    assert workflow["description"] == "A research-and-reflection workflow."
    assert workflow["properties"]["topic"]["description"] == (
        "The topic or question. 1 to 2000 characters."
    )
    assert workflow["properties"]["traceId"]["description"] == (
        "OpenTelemetry trace id of the run (32 hex digits), to find it in a tracing backend."
    )
    document_id = schemas["ponder.type.v1.Document"]["properties"]["id"]["description"]
    assert document_id.startswith('Stable identifier, unique across sources: "arxiv:<id>"')
    assert document_id.endswith("Citations\nrefer to documents by this id.")
    params = schemas["ponder.workflow.v1.WorkflowParameters"]["properties"]
    assert params["maxSources"]["description"] == (
        "Most source documents to use. 0 means 5; 1 to 20."
    )
    state = schemas["ponder.workflow.v1.WorkflowState"]
    assert state["type"] == "string"
    assert state["enum"] == list(workflow_service_pb2.WorkflowState.keys())
    assert state["description"].startswith("Lifecycle state of a workflow.\n\n")
    assert (
        "- `WORKFLOW_STATE_FAILED`: Finished with an error; `Workflow.error` says why."
        in (state["description"])
    )
    stream = schemas["ponder.reflection.v1.StreamReflectResponse"]
    assert (
        "At most one of `stepStarted`, `stepFinished`, `textDelta`, `completed` is set "
        "(oneof `event`)." in stream["description"]
    )


def test_required_and_read_only_follow_field_behavior(document: dict[str, Any]) -> None:
    """REQUIRED fields are `required`, OUTPUT_ONLY ones `readOnly`, across every message."""
    schemas = document["components"]["schemas"]
    workflow = schemas["ponder.workflow.v1.Workflow"]
    assert workflow["required"] == ["kind", "topic"]
    for name in ("name", "id", "state", "result", "error", "steps", "createTime", "warnings"):
        assert workflow["properties"][name]["readOnly"] is True, name
    for name in ("kind", "topic", "parameters"):
        assert "readOnly" not in workflow["properties"][name]
    assert schemas["ponder.embedding.v1.StoreCacheRequest"]["required"] == [
        "namespace",
        "text",
        "payload",
    ]
    assert schemas["ponder.type.v1.Document"]["required"] == ["id"]
    assert schemas["ponder.type.v1.Document"]["properties"]["score"]["readOnly"] is True
    assert "required" not in schemas["ponder.workflow.v1.WorkflowParameters"]

    annotated = 0
    for name, schema in schemas.items():
        if schema.get("type") != "object" or name.startswith("StreamResult_"):
            continue
        for field in descriptor_of(name).fields:
            behaviors = set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])
            prop = schema["properties"][field.json_name]
            assert (field.json_name in schema.get("required", [])) == (
                field_behavior_pb2.REQUIRED in behaviors
            )
            assert prop.get("readOnly", False) == (field_behavior_pb2.OUTPUT_ONLY in behaviors)
            assert "writeOnly" not in prop  # no Ponder field is INPUT_ONLY
            annotated += bool(behaviors)
    assert annotated > 40


def test_int64_fields_are_strings(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    sequence = schemas["ponder.workflow.v1.WatchWorkflowResponse"]["properties"]["sequence"]
    assert {k: sequence[k] for k in ("type", "format", "pattern")} == INT64
    usage = schemas["ponder.type.v1.TokenUsage"]["properties"]
    for name in ("promptTokens", "completionTokens", "totalTokens"):
        assert {k: usage[name][k] for k in ("type", "format", "pattern")} == INT64
    validator = schema_validator(document, "ponder.type.v1.TokenUsage")
    assert validator.is_valid({"promptTokens": "12", "totalTokens": "-3"})
    assert not validator.is_valid({"promptTokens": 12})
    assert not validator.is_valid({"promptTokens": "1.5"})


def test_well_known_and_scalar_types(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    workflow = schemas["ponder.workflow.v1.Workflow"]["properties"]
    assert workflow["createTime"]["type"] == "string"
    assert workflow["createTime"]["format"] == "date-time"
    assert workflow["executionTime"]["pattern"] == r"^-?[0-9]+(\.[0-9]{1,9})?s$"
    assert workflow["kind"]["$ref"] == REF + "ponder.workflow.v1.WorkflowKind"
    assert workflow["warnings"]["items"] == {"type": "string"}
    result = schemas["ponder.workflow.v1.WorkflowResult"]["properties"]
    assert result["score"]["type"] == "number"
    assert result["offline"]["type"] == "boolean"
    assert result["citations"]["items"] == {"$ref": REF + "ponder.type.v1.Citation"}
    payload = schemas["ponder.embedding.v1.StoreCacheRequest"]["properties"]["payload"]
    assert (payload["type"], payload["format"]) == ("string", "byte")


def test_status_schema(document: dict[str, Any]) -> None:
    status = document["components"]["schemas"]["google.rpc.Status"]
    assert status["type"] == "object"
    props = status["properties"]
    assert set(props) == {"code", "message", "details"}
    assert (props["code"]["type"], props["code"]["format"]) == ("integer", "int32")
    assert props["message"]["type"] == "string"
    item = props["details"]["items"]
    assert props["details"]["type"] == "array"
    assert item["type"] == "object"
    assert item["required"] == ["@type"]
    assert item["properties"]["@type"]["type"] == "string"
    assert item["additionalProperties"] is True
    # `[google.rpc.Code][google.rpc.Code]` cross references read as code, not broken links.
    assert "`google.rpc.Code`" in props["code"]["description"]
    workflow = document["components"]["schemas"]["ponder.workflow.v1.Workflow"]
    assert workflow["properties"]["error"]["$ref"] == STATUS_REF["$ref"]

    error = status_pb2.Status(code=3, message="topic: must not be empty")
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[{"field": "topic", "description": "must not be empty"}]
        )
    )
    error.details.append(detail)
    validator = schema_validator(document, "google.rpc.Status")
    assert validator.is_valid(to_json(error))
    assert not validator.is_valid({"code": 3, "message": "x", "details": [{"field": "topic"}]})


def test_a_real_workflow_validates_against_its_schema(document: dict[str, Any]) -> None:
    """A populated Workflow, written as the facade writes it, matches the schema."""
    workflow = workflow_service_pb2.Workflow(
        name="workflows/w1",
        id="w1",
        kind=workflow_service_pb2.WORKFLOW_KIND_RESEARCH,
        topic="retrieval augmented generation",
        state=workflow_service_pb2.WORKFLOW_STATE_SUCCEEDED,
        execution_time=duration_pb2.Duration(seconds=1, nanos=500_000_000),
        warnings=["source arxiv timed out"],
    )
    workflow.create_time.FromSeconds(1_700_000_000)
    workflow.result.usage.prompt_tokens = 1234
    workflow.result.sources.add(id="arxiv:1", score=0.5, source=document_pb2.SOURCE_KIND_ARXIV)
    workflow.steps.add(name="research", state=workflow_service_pb2.STEP_STATE_SUCCEEDED)
    body = to_json(workflow)
    assert body["executionTime"] == "1.500s"
    validator = schema_validator(document, "ponder.workflow.v1.Workflow")
    assert validator.is_valid(body)
    assert validator.is_valid(to_json(workflow_service_pb2.Workflow()))
    assert not validator.is_valid({**body, "state": "NOT_A_STATE"})
    assert not validator.is_valid({**body, "createTime": "yesterday"})
    assert not validator.is_valid({**body, "executionTime": "1.5"})


def test_use_proto_names(routes: list[Route], ponder_comments: DescriptorComments) -> None:
    document = build_openapi(routes, ponder_comments, title="t", version="1", use_proto_names=True)
    schemas = document["components"]["schemas"]
    workflow = schemas["ponder.workflow.v1.Workflow"]
    assert "create_time" in workflow["properties"]
    assert "createTime" not in workflow["properties"]
    listing = operations(document)["WorkflowService_ListWorkflows"][2]
    assert list(parameters(listing, "query")) == ["page_size", "page_token", "filter"]
    stream = schemas["ponder.reflection.v1.StreamReflectResponse"]
    assert "`step_started`" in stream["description"]
    message = workflow_service_pb2.Workflow(topic="t", trace_id="ab")
    assert schema_validator(document, "ponder.workflow.v1.Workflow").is_valid(
        to_json(message, proto_names=True)
    )
    schemathesis.openapi.from_dict(document).validate()


def test_expanded_path_patterns(routes: list[Route], ponder_comments: DescriptorComments) -> None:
    """`{name=workflows/*}` becomes `/workflows/{workflow}`: one plain segment parameter."""
    document = build_openapi(
        routes, ponder_comments, title="t", version="1", expand_path_patterns=True
    )
    found = operations(document)
    method, path, operation = found["WorkflowService_GetWorkflow"]
    assert (method, path) == ("get", "/v1/workflows/{workflow}")
    (workflow,) = operation["parameters"]
    assert workflow["name"] == "workflow"
    assert workflow["in"] == "path"
    assert workflow["schema"] == {"type": "string", "pattern": "^[^/]+$"}
    assert "`name`" in workflow["description"]
    assert found["WorkflowService_CancelWorkflow"][1] == "/v1/workflows/{workflow}:cancel"
    assert found["WorkflowService_ListWorkflows"][1] == "/v1/workflows"
    schemathesis.openapi.from_dict(document).validate()


# --- the synthetic Library proto: what the Ponder protos do not use ---------------------------


def test_library_document_is_valid(library_document: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(library_document))
    schema.validate()
    loaded = list(schema.get_all_operations())
    labels = sorted(r.ok().label for r in loaded if isinstance(r, Ok))
    assert labels == [
        "DELETE /v1/{name}",
        "GET /v1/archives/{archive}/cases/{case}",
        "GET /v1/shelves:search",
        "GET /v1/{name}",
    ]
    # `{shelf.name}` is a valid OpenAPI path parameter (and grpc-gateway's name for it), but
    # schemathesis fills path templates with str.format, which reads the dot as an attribute.
    (failed,) = [r.err() for r in loaded if not isinstance(r, Ok)]
    assert isinstance(failed.__cause__, KeyError)
    assert failed.__cause__.args == ("shelf",)
    assert "/v1/{shelf.name}" in library_document["paths"]
    for name in library_document["components"]["schemas"]:
        jsonschema_rs.meta.validate(library_document["components"]["schemas"][name])
        schema_validator(library_document, name)


def test_additional_binding_that_would_collide_is_expanded(
    library_document: dict[str, Any],
) -> None:
    found = operations(library_document)
    assert found["LibraryService_GetShelf"][:2] == ("get", "/v1/{name}")
    method, path, operation = found["LibraryService_GetShelf_1"]
    assert (method, path) == ("get", "/v1/archives/{archive}/cases/{case}")
    assert list(parameters(operation, "path")) == ["archive", "case"]
    assert list(parameters(operation, "query")) == ["readMask"]
    assert operation["summary"] == "Gets a shelf by name."


def test_library_expanded_paths(library: tuple[Any, DescriptorComments]) -> None:
    """Expanded, a nested path variable loses its dot; every operation loads in schemathesis."""
    service, comments = library
    document = build_openapi(
        build_routes([service]), comments, title="t", version="1", expand_path_patterns=True
    )
    found = operations(document)
    assert found["LibraryService_GetShelf"][1] == "/v1/shelves/{shelf}"
    method, path, update = found["LibraryService_UpdateShelf"]
    assert (method, path) == ("patch", "/v1/shelves/{shelf}")
    (shelf,) = parameters(update, "path").values()
    assert shelf["description"].startswith("A segment of `shelf.name` (`shelves/*`).")
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    assert all(isinstance(result, Ok) for result in schema.get_all_operations())


def test_library_query_parameters(library_document: dict[str, Any]) -> None:
    """Nested, recursive, repeated, enum, 64-bit and WKT query parameters; maps, repeated
    messages and Structs are left out."""
    search = operations(library_document)["LibraryService_SearchShelves"][2]
    query = parameters(search, "query")
    assert list(query) == [
        "query",
        "kinds",
        "filter.minSize",
        "filter.flags",
        "pageSize",
        "since",
        "timeout",
    ]
    assert query["query"]["required"] is True
    assert query["filter.minSize"]["required"] is False  # its parent `filter` is optional
    assert query["filter.minSize"]["schema"] == {
        "type": "string",
        "format": "uint64",
        "pattern": "^[0-9]+$",
    }
    assert query["filter.minSize"]["description"] == "Smallest size."
    assert query["kinds"]["schema"]["items"]["enum"] == ["KIND_UNSPECIFIED", "KIND_WOOD"]
    assert query["filter.flags"]["schema"] == {"type": "array", "items": {"type": "boolean"}}
    assert query["pageSize"]["schema"] == INT64
    assert query["since"]["schema"]["format"] == "date-time"
    assert query["timeout"]["schema"]["pattern"] == r"^-?[0-9]+(\.[0-9]{1,9})?s$"
    ok = search["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["type"] == "array"
    assert ok["content"]["application/json"]["schema"]["items"] == {
        "$ref": REF + f"{LIBRARY}.Shelf"
    }
    assert ok["description"] == "The shelves found."


def test_body_field_without_its_path_bound_subfield(library_document: dict[str, Any]) -> None:
    """PATCH /v1/{shelf.name} with body "shelf": the body is a Shelf without `name`."""
    update = operations(library_document)["LibraryService_UpdateShelf"][2]
    (path_param,) = parameters(update, "path").values()
    assert path_param["name"] == "shelf.name"
    assert path_param["description"].startswith('Resource name, "shelves/{shelf}".')
    assert list(parameters(update, "query")) == ["updateMask"]
    body = update["requestBody"]["content"]["application/json"]["schema"]
    assert body["type"] == "object"
    assert "name" not in body["properties"]
    assert "kind" in body["properties"]
    assert body["required"] == ["kind"]
    assert update["requestBody"]["description"] == "The shelf; its name says which one."


def test_deprecated_method_and_empty_response(library_document: dict[str, Any]) -> None:
    delete = operations(library_document)["LibraryService_DeleteShelf"][2]
    assert delete["deprecated"] is True
    assert parameters(delete, "query")["force"]["schema"] == {"type": "boolean"}
    assert delete["responses"]["200"]["content"]["application/json"]["schema"] == {"type": "object"}


def test_library_shelf_schema(library_document: dict[str, Any]) -> None:
    schemas = library_document["components"]["schemas"]
    shelf = schemas[f"{LIBRARY}.Shelf"]
    props = shelf["properties"]
    assert shelf["required"] == ["kind"]  # `room` is REQUIRED but a oneof member
    assert "At most one of `room`, `building` is set (oneof `location`)." in shelf["description"]
    assert "_note" not in shelf["description"]  # a proto3 optional is no real oneof
    assert props["secret"]["writeOnly"] is True
    assert props["size"]["readOnly"] is True
    assert props["counts"] == {
        "type": "object",
        "additionalProperties": INT64,
        "description": "Books per genre.",
    }
    assert props["labelsByPosition"]["additionalProperties"] == {
        "$ref": REF + f"{LIBRARY}.Shelf.Label"
    }
    assert props["labelsByPosition"]["propertyNames"] == {"pattern": "^-?[0-9]+$"}
    assert props["parent"]["$ref"] == REF + f"{LIBRARY}.Shelf"
    assert props["photo"]["format"] == "byte"
    assert props["checksum"]["pattern"] == "^[0-9]+$"
    assert props["weight"] == {
        "type": "number",
        "format": "double",
        "description": ("Weight in kilograms."),
    }
    assert props["mask"]["type"] == "string"
    assert props["attributes"]["type"] == "object"
    assert "type" not in props["extra"]
    assert props["items"]["type"] == "array"
    assert props["payload"]["required"] == ["@type"]
    assert props["big"]["pattern"] == "^-?[0-9]+$"
    assert props["alias"]["type"] == "string"
    assert props["flag"]["type"] == "boolean"
    assert props["nothing"]["type"] == "null"
    assert props["legacy"]["deprecated"] is True
    assert props["labels"]["items"] == {"$ref": REF + f"{LIBRARY}.Shelf.Label"}
    kind = schemas[f"{LIBRARY}.Shelf.Kind"]
    assert kind["enum"] == ["KIND_UNSPECIFIED", "KIND_WOOD"]
    assert "- `KIND_WOOD`: Made of wood." in kind["description"]
    label = schemas[f"{LIBRARY}.Shelf.Label"]
    assert label["properties"]["text"]["description"] == "Text of the label."


def test_a_full_shelf_validates(
    library: tuple[Any, DescriptorComments], library_document: dict[str, Any]
) -> None:
    """Every field type, set, as proto3 JSON, matches the schema; wrong shapes do not."""
    shelf_class = message_factory.GetMessageClass(descriptor_of(f"{LIBRARY}.Shelf"))
    label_class = message_factory.GetMessageClass(descriptor_of(f"{LIBRARY}.Shelf.Label"))
    shelf: Any = shelf_class(
        name="shelves/a",
        kind=1,
        counts={"poetry": 3},
        labels_by_position={2: label_class(text="x")},
        size=2**63,
        photo=b"\x00\xff",
        room="12",
        note="",
        checksum=2**64 - 1,
        weight=2.5,
        legacy="old",
    )
    shelf.parent.name = "shelves/b"
    shelf.create_time.CopyFrom(timestamp_pb2.Timestamp(seconds=10, nanos=5))
    shelf.lifetime.FromSeconds(90)
    shelf.mask.paths.extend(["name", "create_time"])
    shelf.attributes.update({"a": 1, "b": [True, None]})
    shelf.extra.string_value = "anything"
    shelf.items.extend([1, "two"])
    shelf.payload.Pack(duration_pb2.Duration(seconds=1))
    shelf.big.value = -5
    shelf.alias.value = "alias"
    shelf.flag.value = True
    shelf.nothing = struct_pb2.NULL_VALUE
    shelf.labels.add(text="y")
    body = to_json(shelf)
    assert body["mask"] == "name,createTime"
    assert body["payload"]["@type"] == "type.googleapis.com/google.protobuf.Duration"
    validator = schema_validator(library_document, f"{LIBRARY}.Shelf")
    assert validator.is_valid(body)
    for broken in (
        {"counts": {"poetry": 3}},
        {"labelsByPosition": {"two": {"text": "x"}}},
        {"size": "-1"},
        {"payload": {"value": "1s"}},
        {"lifetime": "90"},
        {"kind": 1},
    ):
        assert not validator.is_valid({**body, **broken}), broken


# --- comments ------------------------------------------------------------------------------


def test_comments_of_every_kind_of_element(library: tuple[Any, DescriptorComments]) -> None:
    _, comments = library
    assert comments.comment(f"{LIBRARY}.LibraryService") == "Shelves of a library."
    assert comments.comment(f"{LIBRARY}.LibraryService.GetShelf") == (
        "Gets a shelf by name. Archived shelves have a longer name."
    )
    assert comments.comment(f"{LIBRARY}.Shelf") == "A shelf of books."
    assert comments.comment(f"{LIBRARY}.Shelf.kind") == "What the shelf is made of."
    assert comments.comment(f"{LIBRARY}.Shelf.Kind") == "Kind of a shelf."
    assert comments.comment(f"{LIBRARY}.Shelf.Kind.KIND_WOOD") == "Made of wood."
    assert comments.comment(f"{LIBRARY}.Shelf.Label") == "A label on a shelf."
    assert comments.comment(f"{LIBRARY}.Shelf.Label.text") == "Text of the label."
    assert comments.comment(f"{LIBRARY}.Shelf.location") == "Where the shelf stands."
    assert comments.comment(f".{LIBRARY}.Shelf.room") == "A room."
    assert comments.comment(f"{LIBRARY}.Shelf.nope") == ""
    assert comments.comment("google.protobuf.Duration").startswith("A Duration represents")
    assert f"{LIBRARY}.Shelf" in comments
    assert f"{LIBRARY}.Nope" not in comments


def test_real_ponder_comments(ponder_comments: DescriptorComments) -> None:
    assert ponder_comments.comment("ponder.workflow.v1.WorkflowService.GetWorkflow") == (
        "Returns a workflow by name."
    )
    assert ponder_comments.comment("ponder.type.v1.SourceKind.SOURCE_KIND_WEB") == (
        "Web pages, found through the Tavily search API."
    )
    assert ponder_comments.comment("ponder.workflow.v1.WorkflowParameters.sources") == (
        "Sources to search. Empty means the kind's default: the local library for REFLECTION,\n"
        "every enabled source otherwise."
    )
    assert ponder_comments.comment("ponder.reflection.v1.StreamReflectResponse.event") == (
        "The event."
    )


def test_empty_and_merged_comments(
    ponder_comments: DescriptorComments, library: tuple[Any, DescriptorComments]
) -> None:
    empty = DescriptorComments.empty()
    assert len(empty) == 0
    assert empty.comment("ponder.workflow.v1.Workflow") == ""
    merged = ponder_comments.merged(library[1])
    assert merged.comment("ponder.workflow.v1.Workflow") == "A research-and-reflection workflow."
    assert merged.comment(f"{LIBRARY}.Shelf") == "A shelf of books."
    assert DescriptorComments.from_bytes(b"").comment("ponder.workflow.v1.Workflow") == ""


def test_a_document_without_comments_is_still_valid(routes: list[Route]) -> None:
    document = build_openapi(routes, DescriptorComments.empty(), title="t", version="1")
    schemathesis.openapi.from_dict(document).validate()
    get = operations(document)["WorkflowService_GetWorkflow"][2]
    assert "summary" not in get
    assert "description" not in document["components"]["schemas"]["ponder.workflow.v1.Workflow"]
    status = document["components"]["schemas"]["google.rpc.Status"]
    assert status["description"].startswith("The error of a failed call")
    assert status["properties"]["code"]["description"]


def test_clean_comment_and_helpers() -> None:
    raw = " First line.\n   indented code\n\n Second paragraph.  \n"
    assert clean_comment(raw) == "First line.\n  indented code\n\nSecond paragraph."
    assert clean_comment(textwrap.indent("x", "    ")) == "x"
    assert summary_of("Gets a thing, e.g. a book. Then more.\n\nDetails.") == (
        "Gets a thing, e.g. a book."
    )
    assert summary_of("One line\nwrapped here. Next.") == "One line wrapped here."
    assert markdown_of("See [Status][google.rpc.Status] and `[n]` markers.") == (
        "See `Status` and `[n]` markers."
    )
