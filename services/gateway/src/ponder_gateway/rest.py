"""The gateway's REST/JSON facade: routes from the google.api.http options of the services it
serves, dispatched in-process through the gRPC server's own handlers and interceptors."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from google.protobuf import descriptor_pool

from ponder_gateway.settings import GatewaySettings
from ponder_rest.app import FacadeConfig, Invoker, RestFacade
from ponder_rest.codec import JsonOptions
from ponder_rest.comments import DescriptorComments
from ponder_rest.docs import DocsAssets
from ponder_rest.openapi import build_openapi
from ponder_rest.routes import build_routes
from ponder_runtime import Telemetry


TITLE = "Ponder API"
VERSION = "v1"
DESCRIPTION = (
    "Research-and-reflection workflows for LLM agents: grounded, cited answers on a topic. "
    "This REST/JSON API is transcoded from the gRPC API (google.api.http annotations); "
    "errors are google.rpc.Status objects, streams are newline-delimited JSON or "
    "Server-Sent Events (Accept: text/event-stream)."
)


def product_comments() -> DescriptorComments:
    """Comments of the product protos (a descriptor set with source info ships with them)."""
    data = resources.files("ponder").joinpath("descriptors.binpb").read_bytes()
    return DescriptorComments.from_bytes(data)


def build_facade(
    settings: GatewaySettings,
    service_names: Sequence[str],
    invoker: Invoker,
    telemetry: Telemetry,
) -> RestFacade:
    """The ASGI app for the services the gateway serves (raises TemplateError for a bad
    annotation, which stops the start-up with the method named)."""
    pool = descriptor_pool.Default()
    routes = build_routes(pool.FindServiceByName(name) for name in service_names)
    options = JsonOptions(
        use_proto_names=settings.json_use_proto_names,
        emit_unpopulated=settings.json_emit_unpopulated,
    )
    document = build_openapi(
        routes,
        product_comments(),
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        use_proto_names=options.use_proto_names,
        # /v1/workflows/{workflow} rather than /v1/{name}: Swagger UI's "Try it out" and
        # generated clients then build paths the router matches.
        expand_path_patterns=True,
    )
    config = FacadeConfig(
        json=options,
        max_body_bytes=settings.http_max_body_bytes,
        max_upload_bytes=settings.http_max_upload_bytes,
        cors_origins=tuple(settings.cors_allowed_origins),
        cors_allow_credentials=settings.cors_allow_credentials,
        default_timeout_seconds=settings.http_default_timeout_seconds or None,
        access_log=settings.http_access_log,
        sse_id_field="sequence",  # WatchWorkflowResponse.sequence
        sse_resume_field="after_sequence",  # WatchWorkflowRequest.after_sequence
    )
    return RestFacade(
        routes,
        invoker,
        document,
        config=config,
        assets=DocsAssets.locate(),
        tracer=telemetry.tracer("ponder_rest"),
        meter=telemetry.meter("ponder_rest"),
        rpc_metrics=telemetry.rpc_metrics,  # REST calls counted with the gRPC ones
        title=TITLE,
    )
