"""WrappingInterceptor makes each method's handler once, not once per call, and the wrapped
behaviour still runs on every call (a guard still refuses a call after the handler was kept)."""

from __future__ import annotations

from typing import Any, NamedTuple

import grpc
import pytest

from ponder_runtime.errors import PonderError
from ponder_runtime.interceptors import GuardInterceptor, Handler


class Details(NamedTuple):
    """What grpc passes an interceptor: the method's full name and the call's metadata."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


class Refused(PonderError):
    """The test guard's refusal."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "REFUSED"


class Context:
    """The part of a servicer context the guard reads."""

    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed


async def hello(request: bytes, context: Any) -> bytes:
    """A unary behaviour."""
    return b"hello " + request


async def test_a_handler_is_wrapped_once_per_method_and_checked_on_every_call() -> None:
    """The same handler object comes back call after call; the guard runs each time."""
    checked: list[str] = []

    async def guard(context: Any, method: str) -> None:
        checked.append(method)
        if not context.allowed:
            raise Refused("not allowed")

    interceptor = GuardInterceptor(guard, open_prefixes=("/open.",))
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "/svc.S/Hello": grpc.unary_unary_rpc_method_handler(hello),
        "/open.S/Hello": grpc.unary_unary_rpc_method_handler(hello),
    }

    async def continuation(details: grpc.HandlerCallDetails) -> Handler:
        return handlers.get(details.method)

    async def handler_of(method: str) -> Handler:
        return await interceptor.intercept_service(continuation, Details(method))  # type: ignore[arg-type]

    first = await handler_of("/svc.S/Hello")
    second = await handler_of("/svc.S/Hello")
    assert first is not None
    assert first is second
    assert first is not handlers["/svc.S/Hello"]  # wrapped
    assert await handler_of("/open.S/Hello") is handlers["/open.S/Hello"]  # exempt: as it is
    assert await handler_of("/svc.S/Missing") is None
    behaviour = first.unary_unary
    assert behaviour is not None
    allowed: Any = Context(allowed=True)
    refused: Any = Context(allowed=False)
    assert await behaviour(b"a", allowed) == b"hello a"
    with pytest.raises(Refused):
        await behaviour(b"b", refused)
    assert checked == ["/svc.S/Hello", "/svc.S/Hello"]
    # A handler registered anew for the method (another object) is wrapped anew.
    handlers["/svc.S/Hello"] = grpc.unary_unary_rpc_method_handler(hello)
    third = await handler_of("/svc.S/Hello")
    assert third is not None
    assert third is not first
