"""A client that opens many WatchWorkflow streams on one workflow and then vanishes (the test
kills it): `python tests/reliability/watch_client.py ADDRESS NAME COUNT`. Prints "ready" once
every stream has its first event."""

from __future__ import annotations

import asyncio
import sys

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc


async def main(address: str, name: str, count: int) -> None:
    """Open `count` watches, report ready, then wait to be killed."""
    channel = grpc.aio.insecure_channel(address)
    stub = workflow_grpc.WorkflowServiceStub(channel)
    calls = [stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name)) for _ in range(count)]
    await asyncio.gather(*(call.read() for call in calls))
    print("ready", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
