"""Workflow request validation and defaults."""

from __future__ import annotations

import pytest

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.parameters import resolve_parameters
from ponder_runtime import InvalidArgumentError


REFLECTION = workflow_pb2.WORKFLOW_KIND_REFLECTION


class TestResolveParameters:
    """resolve_parameters."""

    def test_defaults_fill_zero_values(self):
        """Zero values take the documented defaults; reflection searches the library."""
        params = resolve_parameters(REFLECTION, "rag", workflow_pb2.WorkflowParameters())
        assert params.max_sources == 5
        assert params.max_iterations == 2
        assert params.score_threshold == 8.0
        assert params.sources == (document_pb2.SOURCE_KIND_LIBRARY,)
        assert params.cache_policy == workflow_pb2.CACHE_POLICY_USE

    def test_research_kinds_default_to_every_source(self):
        """RESEARCH without sources leaves the choice to the research service (all enabled)."""
        params = resolve_parameters(
            workflow_pb2.WORKFLOW_KIND_RESEARCH, "rag", workflow_pb2.WorkflowParameters()
        )
        assert params.sources == ()

    def test_duplicate_sources_are_merged(self):
        """Repeated sources are asked once, in the given order."""
        lib, web = document_pb2.SOURCE_KIND_LIBRARY, document_pb2.SOURCE_KIND_WEB
        params = resolve_parameters(
            REFLECTION, "rag", workflow_pb2.WorkflowParameters(sources=[web, lib, web])
        )
        assert params.sources == (web, lib)

    @pytest.mark.parametrize(
        ("kind", "topic", "params", "fields"),
        [
            (REFLECTION, "", {}, ["topic"]),
            (workflow_pb2.WORKFLOW_KIND_UNSPECIFIED, "rag", {}, ["kind"]),
            (REFLECTION, "rag", {"max_sources": 21}, ["parameters.max_sources"]),
            (REFLECTION, "rag", {"max_iterations": 6}, ["parameters.max_iterations"]),
            (REFLECTION, "rag", {"score_threshold": -1}, ["parameters.score_threshold"]),
            (REFLECTION, "rag", {"cache_policy": 9}, ["parameters.cache_policy"]),
        ],
        ids=["topic", "kind", "max-sources", "iterations", "threshold", "cache-policy"],
    )
    def test_each_bad_field_is_named(self, kind, topic, params, fields):
        """Every violation names its field path, with the prefix of the request."""
        with pytest.raises(InvalidArgumentError) as caught:
            resolve_parameters(
                kind, topic, workflow_pb2.WorkflowParameters(**params), prefix="workflow."
            )
        assert [v.field for v in caught.value.violations] == [f"workflow.{f}" for f in fields]
