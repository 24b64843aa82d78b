"""Every service writes one JSON access line per RPC, found by the caller's trace id."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from tests.support.processes import service_process
from tests.support.waiting import eventually


async def test_reflection_process_logs_each_rpc_under_the_callers_trace_id(tmp_path):
    """A Reflect call and a refused one to a real reflection process: each leaves one INFO
    "rpc" line with the method, status code, duration, peer and the trace id of the caller's
    traceparent; health checks leave none."""
    async with service_process("reflection", tmp_path) as reflection:
        async with grpc.aio.insecure_channel(reflection.address) as channel:
            stub = reflection_grpc.ReflectionServiceStub(channel)
            ok_trace, bad_trace = uuid.uuid4().hex, uuid.uuid4().hex
            await stub.Reflect(
                reflection_pb2.ReflectRequest(topic="dense retrieval", max_iterations=1),
                metadata=(("traceparent", f"00-{ok_trace}-{'ab' * 8}-01"),),
                timeout=60,
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Reflect(
                    reflection_pb2.ReflectRequest(topic=""),
                    metadata=(("traceparent", f"00-{bad_trace}-{'cd' * 8}-01"),),
                    timeout=60,
                )
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        def access() -> list[dict[str, object]]:
            lines = [json.loads(line) for line in reflection.log_lines()]
            return [line for line in lines if line["message"] == "rpc"]

        assert await eventually(lambda: len(access()) >= 2, timeout=10)
    by_trace = {line["trace_id"]: line for line in access()}
    assert len(access()) == 2  # health checks are not logged
    ok, bad = by_trace[ok_trace], by_trace[bad_trace]
    assert ok["rpc_method"] == "/ponder.reflection.v1.ReflectionService/Reflect"
    assert (ok["level"], ok["code"], bad["code"]) == ("INFO", "OK", "INVALID_ARGUMENT")
    assert isinstance(ok["duration_ms"], float)
    assert ok["duration_ms"] > 0
    assert str(ok["peer"]).startswith("ipv4:127.0.0.1:")
    assert ok["service"] == "reflection"
