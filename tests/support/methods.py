"""The methods a server lists through gRPC reflection, and calling them raw."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


HEALTH = "grpc.health.v1.Health"


REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


OPEN_SERVICES = {HEALTH, REFLECTION}


@dataclass(frozen=True)
class Method:
    """One method as the gateway's reflection describes it."""

    service: str
    name: str
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        """/package.Service/Method."""
        return f"/{self.service}/{self.name}"


async def _reflect(
    stub: reflection_pb2_grpc.ServerReflectionStub, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    async def one() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield request

    responses = [r async for r in stub.ServerReflectionInfo(one(), timeout=10)]
    assert len(responses) == 1, request
    return responses[0]


async def served_methods(channel: grpc.aio.Channel) -> list[Method]:
    """Every method of every service the server lists through gRPC reflection (asked without
    a key), read from the file descriptors reflection returns."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    listed = await _reflect(stub, reflection_pb2.ServerReflectionRequest(list_services=""))
    methods: list[Method] = []
    for service in listed.list_services_response.service:
        answer = await _reflect(
            stub, reflection_pb2.ServerReflectionRequest(file_containing_symbol=service.name)
        )
        found = False
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            for described in proto.service:
                if f"{proto.package}.{described.name}" != service.name:
                    continue
                found = True
                methods += [
                    Method(service.name, m.name, m.client_streaming, m.server_streaming)
                    for m in described.method
                ]
        assert found, f"reflection lists {service.name} but does not describe it"
    return methods


async def call_raw(
    channel: grpc.aio.Channel, method: Method, metadata: Sequence[tuple[str, str]]
) -> grpc.aio.AioRpcError | None:
    """Call a unary-request `method` with an empty request message; its error, or None when
    it succeeded (a stream is read to its first message)."""
    assert not method.client_streaming, method.path
    try:
        if method.server_streaming:
            streaming: grpc.aio.UnaryStreamMultiCallable[bytes, bytes]
            streaming = channel.unary_stream(method.path)
            stream = streaming(b"", metadata=metadata, timeout=10)
            async for _ in stream:
                break
            stream.cancel()
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
            unary = channel.unary_unary(method.path)
            await unary(b"", metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc
    return None
