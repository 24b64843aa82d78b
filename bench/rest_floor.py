"""The REST facade's floor for bench/bench_rest.py: the gateway's facade with no workflow behind it.

Usage: .venv/bin/python bench/rest_floor.py --port P --reply FILE [--same]

Serves the gateway's own REST facade (`ponder_gateway.rest.build_facade`: routes, the body
transcoder, the response encoder, the access line, spans and metrics, on `ponder_rest`'s uvicorn
server and uvloop, settings from the environment like the gateway) in front of an invoker that
answers every call at once with the reply in FILE (`RunReflectionWorkflowResponse` JSON, as the
gateway's REST facade answered a cache hit): no interceptors (keys, scopes, rate limits), no
workflow, no cache lookup, no record. Each call gets a fresh copy with a new workflow name and
create time (a new workflow around a reused result: the answer the recorded cache-hit path
encodes), or with `--same` the very same message (its JSON memoized whole: what the facade costs
when the answer costs nothing). What the recorded cache-hit path can reach is below these.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvloop
from google.protobuf import json_format
from google.protobuf.message import Message

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.rest import build_facade
from ponder_gateway.settings import GatewaySettings
from ponder_rest.server import HttpServer
from ponder_runtime import configure_telemetry, load_settings
from ponder_runtime.local import LocalContext
from ponder_runtime.logs import configure_logging


class CannedInvoker:
    """Answers every unary call with the canned reply: a fresh copy each time, or the same."""

    def __init__(self, reply: pb.RunReflectionWorkflowResponse, *, same: bool) -> None:
        self._reply = reply
        self._same = same
        self._count = itertools.count()

    async def unary(self, method: str, request: Message, context: LocalContext) -> Any:
        """The canned reply (`method` and `request` are not looked at)."""
        if self._same:
            return self._reply
        reply = pb.RunReflectionWorkflowResponse()
        reply.CopyFrom(self._reply)
        reply.workflow.name = f"workflows/floor-{next(self._count)}"
        reply.workflow.create_time.GetCurrentTime()
        return reply

    def stream(self, method: str, request: Message, context: LocalContext) -> AsyncIterator[Any]:
        """No streams here."""
        raise NotImplementedError("the floor serves unary calls only")


async def serve(port: int, reply: pb.RunReflectionWorkflowResponse, *, same: bool) -> None:
    """Serve the facade on `port` until killed."""
    settings = load_settings(GatewaySettings)
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    telemetry = configure_telemetry(settings)
    service = pb.DESCRIPTOR.services_by_name["WorkflowService"].full_name
    app = build_facade(settings, [service], CannedInvoker(reply, same=same), telemetry)
    server = HttpServer(app, "127.0.0.1", port, grace_seconds=1)
    await server.start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply", type=Path, required=True, help="the reply's JSON")
    parser.add_argument("--same", action="store_true", help="answer the very same message")
    args = parser.parse_args()
    reply = json_format.Parse(args.reply.read_text(), pb.RunReflectionWorkflowResponse())
    uvloop.run(serve(args.port, reply, same=args.same))


if __name__ == "__main__":
    main()
