"""gRPC server reflection (v1alpha, what grpcurl speaks), including method-name lookups."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ponder.research.v1 import research_service_pb2_grpc as research_grpc


RESEARCH = "ponder.research.v1.ResearchService"
RESEARCH_FILE = "ponder/research/v1/research_service.proto"


@pytest.fixture
async def reflection_stub(start_server, module_of) -> reflection_pb2_grpc.ServerReflectionStub:
    """A reflection stub on a ready server hosting ResearchService (base servicer)."""

    def register(server: grpc.aio.Server) -> None:
        research_grpc.add_ResearchServiceServicer_to_server(
            research_grpc.ResearchServiceServicer(), server
        )

    running = await start_server(module_of([RESEARCH], register))
    return reflection_pb2_grpc.ServerReflectionStub(running.channel)


async def _ask(
    stub: reflection_pb2_grpc.ServerReflectionStub,
    *requests: reflection_pb2.ServerReflectionRequest,
) -> list[reflection_pb2.ServerReflectionResponse]:
    """Send the requests on one bidi stream and collect one response per request."""
    call = stub.ServerReflectionInfo(timeout=5)
    responses = []
    for request in requests:
        await call.write(request)
        responses.append(await call.read())
    await call.done_writing()
    assert await call.code() is grpc.StatusCode.OK
    return responses


def _files(response: reflection_pb2.ServerReflectionResponse) -> list[str]:
    """Names of the file descriptors in a file_descriptor_response."""
    assert response.WhichOneof("message_response") == "file_descriptor_response"
    return [
        descriptor_pb2.FileDescriptorProto.FromString(raw).name
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]


class TestServerReflection:
    async def test_list_services(self, reflection_stub) -> None:
        """list_services names the module's services, health and reflection itself."""
        (response,) = await _ask(
            reflection_stub, reflection_pb2.ServerReflectionRequest(list_services="")
        )
        names = {service.name for service in response.list_services_response.service}
        assert names == {
            RESEARCH,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }

    @pytest.mark.parametrize(
        "symbol",
        [
            RESEARCH,
            f"{RESEARCH}.SearchSources",
            "ponder.research.v1.SearchSourcesRequest",
            "ponder.research.v1.SourceState",
        ],
        ids=["service", "method", "message", "enum"],
    )
    async def test_file_containing_symbol(self, reflection_stub, symbol: str) -> None:
        """Services, methods (used to fail), messages and enums resolve to their file."""
        (response,) = await _ask(
            reflection_stub,
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol),
        )
        files = _files(response)
        assert files[0] == RESEARCH_FILE
        assert response.original_request.file_containing_symbol == symbol

    async def test_method_file_describes_the_method(self, reflection_stub) -> None:
        """The file returned for a method declares that method with its message types."""
        (response,) = await _ask(
            reflection_stub,
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol=f"{RESEARCH}.SearchSources"
            ),
        )
        raw = response.file_descriptor_response.file_descriptor_proto[0]
        file = descriptor_pb2.FileDescriptorProto.FromString(raw)
        (service,) = file.service
        assert service.name == "ResearchService"
        method = next(m for m in service.method if m.name == "SearchSources")
        assert method.input_type == ".ponder.research.v1.SearchSourcesRequest"
        assert method.output_type == ".ponder.research.v1.SearchSourcesResponse"

    @pytest.mark.parametrize(
        "symbol",
        [f"{RESEARCH}.NoSuchMethod", "ponder.nope.v1.Nope", "ponder.nope.v1.Nope.Method", "x"],
        ids=["unknown-method", "unknown-service", "method-of-unknown-service", "no-dot"],
    )
    async def test_unknown_symbol_is_not_found(self, reflection_stub, symbol: str) -> None:
        """Unknown symbols answer an error_response with NOT_FOUND; the stream stays open."""
        missing, known = await _ask(
            reflection_stub,
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=RESEARCH),
        )
        assert missing.WhichOneof("message_response") == "error_response"
        assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
        assert _files(known)[0] == RESEARCH_FILE

    async def test_file_by_filename(self, reflection_stub) -> None:
        """A file can be fetched by its name."""
        (response,) = await _ask(
            reflection_stub, reflection_pb2.ServerReflectionRequest(file_by_filename=RESEARCH_FILE)
        )
        assert _files(response)[0] == RESEARCH_FILE
