"""The facade rig's fixtures (a served TranscodingService and clients of it) for every REST
test module."""

from tests.unit.rest.facade_rig import backend, http, local, local_http


__all__ = ["backend", "http", "local", "local_http"]
