"""Workflow request validation and defaults."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.parameters import ParameterShapes, resolve_parameters
from ponder_runtime import InvalidArgumentError
from ponder_runtime.errors import FieldViolation


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


def _refusal(
    resolve: Callable[..., object], *args: object, **kwargs: object
) -> tuple[FieldViolation, ...]:
    """The violations a call of `resolve` is refused with (it must be refused)."""
    with pytest.raises(InvalidArgumentError) as caught:
        resolve(*args, **kwargs)
    return caught.value.violations


class TestParameterShapes:
    """ParameterShapes: resolve_parameters, each request shape checked and resolved once."""

    def test_a_known_shape_resolves_as_resolve_parameters_does(self):
        """The same shape twice, under other topics, gives resolve_parameters' answer (the
        same object: resolved once); another kind or field prefix is a shape of its own."""
        shapes = ParameterShapes()
        given = workflow_pb2.WorkflowParameters(max_sources=3, score_threshold=7.5)
        first = shapes.resolve(REFLECTION, "rag", given)
        assert first == resolve_parameters(REFLECTION, "rag", given)
        assert shapes.resolve(REFLECTION, "agents", given) is first
        research = shapes.resolve(workflow_pb2.WORKFLOW_KIND_RESEARCH, "rag", given)
        assert research == resolve_parameters(workflow_pb2.WORKFLOW_KIND_RESEARCH, "rag", given)
        assert research.sources == ()
        assert shapes.resolve(REFLECTION, "rag", given, prefix="workflow.") == first

    def test_the_topic_is_checked_every_time(self):
        """A known shape with a blank or too long topic is refused as resolve_parameters
        refuses it."""
        shapes = ParameterShapes()
        given = workflow_pb2.WorkflowParameters()
        shapes.resolve(REFLECTION, "rag", given, prefix="workflow.")
        for topic in ("  ", "x" * 2001):
            assert _refusal(shapes.resolve, REFLECTION, topic, given, prefix="workflow.") == (
                _refusal(resolve_parameters, REFLECTION, topic, given, prefix="workflow.")
            )

    def test_a_bad_shape_is_refused_every_time_with_every_violation(self):
        """A shape that fails its checks is refused again (never remembered), its topic's
        violation listed with the others, as resolve_parameters lists them."""
        shapes = ParameterShapes()
        bad = workflow_pb2.WorkflowParameters(max_sources=99, max_iterations=9)
        expected = _refusal(resolve_parameters, REFLECTION, " ", bad)
        assert [v.field for v in expected] == [
            "topic",
            "parameters.max_sources",
            "parameters.max_iterations",
        ]
        assert _refusal(shapes.resolve, REFLECTION, " ", bad) == expected
        assert _refusal(shapes.resolve, REFLECTION, "rag", bad) == expected[1:]

    def test_it_forgets_every_shape_beyond_its_size(self):
        """Past `max_shapes` it starts again (bounded memory); answers stay right."""
        shapes = ParameterShapes(max_shapes=2)
        for sources in range(1, 6):
            given = workflow_pb2.WorkflowParameters(max_sources=sources)
            assert shapes.resolve(REFLECTION, "rag", given).max_sources == sources
        again = workflow_pb2.WorkflowParameters(max_sources=1)
        assert shapes.resolve(REFLECTION, "rag", again).max_sources == 1
