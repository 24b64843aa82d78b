"""gRPC server reflection that also resolves method names (`grpcurl describe pkg.Svc.Method`).

grpcio-reflection asks the descriptor pool for the file containing a symbol; the pool knows
services and messages but not methods, so `describe` of a method failed with "Symbol not
found". A method resolves to the file of its service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc


class MethodAwareReflectionServicer(reflection.aio.ReflectionServicer):  # type: ignore[misc]
    """ServerReflection (v1alpha, what grpcurl speaks) with method-name lookups."""

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        try:
            self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            service, _, method = fully_qualified_name.rpartition(".")
            try:
                descriptor = self._pool.FindServiceByName(service)
            except KeyError:
                descriptor = None
            if descriptor is not None and method in descriptor.methods_by_name:
                fully_qualified_name = service
        return super()._file_containing_symbol(request, fully_qualified_name)


def enable_reflection(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    """Serve reflection for `service_names` (plus the reflection service itself)."""
    names = [*service_names, reflection.SERVICE_NAME]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        MethodAwareReflectionServicer(names), server
    )
