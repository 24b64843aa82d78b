"""Integration fixtures beyond the shared ones: the Temporal engine's stack."""

from tests.temporal_stack import temporal_server, temporal_stack


__all__ = ["temporal_server", "temporal_stack"]
