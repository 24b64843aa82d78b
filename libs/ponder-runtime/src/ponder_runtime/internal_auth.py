"""Service-to-service authentication: a shared token (PONDER_INTERNAL_TOKEN, from a Secret)
that the gateway and research send on every call to an internal service, as the metadata
`x-ponder-internal-token`, and that research, reflection and embedding check on every method
but health and server reflection (probes and `grpcurl list` stay open; they run no method and
read no data). A call without the token, or with another one, is UNAUTHENTICATED.

A service started without a token accepts every call (local use only) and logs a warning
saying so; the devstack (`make run`, the tests' Stack) and the Kubernetes manifests always
set one."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from ponder_runtime.errors import UnauthenticatedError
from ponder_runtime.interceptors import GuardInterceptor


logger = logging.getLogger(__name__)

INTERNAL_TOKEN_HEADER = "x-ponder-internal-token"
# The caller's tenant, as the gateway states it on internal calls made for that caller (the
# token vouches for it); the gateway drops any value a caller sends.
TENANT_HEADER = "x-ponder-tenant"
# Open without the token: load balancers and kubelets probe health; reflection describes the
# API only (the same contract the stubs ship).
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class InternalTokenGuard:
    """Checks the internal token of a call (constant-time comparison; never logs it)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def __call__(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        """Pass, or raise UnauthenticatedError."""
        sent = b""
        for key, value in context.invocation_metadata() or ():
            if key == INTERNAL_TOKEN_HEADER:
                sent = value.encode() if isinstance(value, str) else bytes(value)
                break
        if not sent or not hmac.compare_digest(sent, self._token):
            logger.warning(
                "internal call refused",
                extra={"rpc_method": method, "reason": "missing" if not sent else "wrong token"},
            )
            raise UnauthenticatedError(
                f"{method} is internal: calls need the deployment's internal token"
            )


def internal_interceptors(token: str | None, service: str) -> list[grpc.aio.ServerInterceptor]:
    """The server guard of an internal service: every method but health and reflection needs
    `token`; none when no token is configured (with a warning)."""
    if not token:
        logger.warning(
            "PONDER_INTERNAL_TOKEN is not set: internal calls are not authenticated "
            "(local use only)",
            extra={"service": service},
        )
        return []
    return [GuardInterceptor(InternalTokenGuard(token), open_prefixes=OPEN_PREFIXES)]


def _with_token(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    """The call's details with the token added to its metadata (any value a caller put under
    the same key is replaced)."""
    metadata = grpc.aio.Metadata()
    for key, value in details.metadata or ():
        if key != INTERNAL_TOKEN_HEADER:
            metadata.add(key, value)
    metadata.add(INTERNAL_TOKEN_HEADER, token)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _TokenUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        """Send the token with a unary call."""
        return await continuation(_with_token(details, self._token), request)


class _TokenUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        """Send the token with a server-streaming call."""
        return await continuation(_with_token(details, self._token), request)


def token_client_interceptors(token: str | None) -> Sequence[grpc.aio.ClientInterceptor]:
    """Client interceptors that send `token` on every unary and server-streaming call (the
    shapes internal services have); none without a token."""
    if not token:
        return []
    return [_TokenUnaryUnary(token), _TokenUnaryStream(token)]
