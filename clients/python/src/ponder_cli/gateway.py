"""The calls the CLI makes to the gateway's WorkflowService and health service (sync gRPC)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_cli.errors import from_rpc_error


REPLAY_AGE_HEADER = "x-ponder-replay-age"


def workflow_name(workflow: str) -> str:
    """`workflows/{id}` for an id or a name."""
    return workflow if workflow.startswith("workflows/") else f"workflows/{workflow}"


@dataclass(frozen=True)
class Target:
    """Where the gateway is and how to talk to it."""

    address: str
    api_key: str | None = None
    tls: bool = False

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata: the API key as `authorization: Bearer <key>`, when there is one."""
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()


@dataclass(frozen=True)
class RunOptions:
    """What to run and how (unset values take the gateway's defaults)."""

    kind: str  # a WorkflowKind value's name
    topic: str
    sources: Sequence[str] = ()  # SourceKind names
    max_sources: int = 0
    max_iterations: int = 0
    score_threshold: float = 0.0
    cache_policy: str = "CACHE_POLICY_UNSPECIFIED"
    max_tokens: int = 0
    max_cost_usd: float = 0.0
    multitask_strategy: str = "MULTITASK_STRATEGY_UNSPECIFIED"  # a MultitaskStrategy name
    notify_url: str = ""  # completion webhook: URL and the name of a gateway secret
    notify_secret: str = ""

    def workflow(self) -> pb.Workflow:
        """The workflow message to send."""
        notification = (
            pb.NotificationTarget(url=self.notify_url, secret_name=self.notify_secret)
            if self.notify_url or self.notify_secret
            else None
        )
        return pb.Workflow(
            notification=notification,
            kind=self.kind,
            topic=self.topic,
            parameters=pb.WorkflowParameters(
                sources=self.sources,
                max_sources=self.max_sources,
                max_iterations=self.max_iterations,
                score_threshold=self.score_threshold,
                cache_policy=self.cache_policy,
                max_tokens=self.max_tokens,
                max_cost_usd=self.max_cost_usd,
                multitask_strategy=self.multitask_strategy,
            ),
        )


@dataclass(frozen=True)
class RunReply:
    """A finished workflow, and how old it was when it was a replay of an identical request."""

    workflow: pb.Workflow
    replay_age_seconds: float | None = None


class Client:
    """A channel to the gateway and unary calls on it; every failed call raises CliError
    (see errors.py)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        if target.tls:
            self._channel = grpc.secure_channel(target.address, grpc.ssl_channel_credentials())
        else:
            self._channel = grpc.insecure_channel(target.address)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _unary(self, method: Callable[..., Any], request: Message, timeout: float) -> Any:
        """One unary call with the key and a deadline; failures as CliError. (The generated
        stubs are untyped; callers annotate what they get.)"""
        try:
            return method(request, timeout=timeout, metadata=self.target.metadata())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target.address) from exc


class Gateway(Client):
    """The WorkflowService and health calls the CLI makes."""

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._stub = workflow_grpc.WorkflowServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, options: RunOptions, timeout: float) -> RunReply:
        """Run a workflow to completion (RunWorkflow)."""
        request = pb.RunWorkflowRequest(workflow=options.workflow())
        try:
            reply, call = self._stub.RunWorkflow.with_call(
                request, timeout=timeout, metadata=self.target.metadata()
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target.address) from exc
        age = dict(call.initial_metadata() or ()).get(REPLAY_AGE_HEADER)
        return RunReply(reply.workflow, float(age) if isinstance(age, str) else None)

    def create(self, options: RunOptions, workflow_id: str, timeout: float) -> pb.Workflow:
        """Start a long-running workflow (CreateWorkflow), with an idempotency key."""
        request = pb.CreateWorkflowRequest(
            workflow=options.workflow(), workflow_id=workflow_id, request_id=str(uuid.uuid4())
        )
        reply: pb.CreateWorkflowResponse = self._unary(self._stub.CreateWorkflow, request, timeout)
        return reply.workflow

    def get(self, workflow: str, timeout: float) -> pb.Workflow:
        """A workflow by id or name."""
        request = pb.GetWorkflowRequest(name=workflow_name(workflow))
        reply: pb.GetWorkflowResponse = self._unary(self._stub.GetWorkflow, request, timeout)
        return reply.workflow

    def list(
        self, page_size: int, page_token: str, filter_: str, timeout: float
    ) -> pb.ListWorkflowsResponse:
        """One page of workflows, newest first."""
        request = pb.ListWorkflowsRequest(
            page_size=page_size, page_token=page_token, filter=filter_
        )
        reply: pb.ListWorkflowsResponse = self._unary(self._stub.ListWorkflows, request, timeout)
        return reply

    def cancel(self, workflow: str, timeout: float) -> pb.Workflow:
        """Cancel a pending or running workflow."""
        request = pb.CancelWorkflowRequest(name=workflow_name(workflow))
        reply: pb.CancelWorkflowResponse = self._unary(self._stub.CancelWorkflow, request, timeout)
        return reply.workflow

    def delete(self, workflow: str, timeout: float) -> None:
        """Delete a finished workflow (a running one must be cancelled first)."""
        request = pb.DeleteWorkflowRequest(name=workflow_name(workflow))
        self._unary(self._stub.DeleteWorkflow, request, timeout)

    def watch(self, workflow: str) -> Iterator[pb.WatchWorkflowResponse]:
        """The workflow's events until it ends (no deadline: a workflow may take minutes)."""
        request = pb.WatchWorkflowRequest(name=workflow_name(workflow))
        stream = self._stub.WatchWorkflow(request, metadata=self.target.metadata())
        try:
            yield from stream
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target.address) from exc
        finally:
            stream.cancel()

    def health(self, service: str, timeout: float) -> str:
        """The health status name (SERVING, NOT_SERVING, ...) of `service` ("" = the server)."""
        request = health_pb2.HealthCheckRequest(service=service)
        reply = self._unary(self._health.Check, request, timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
