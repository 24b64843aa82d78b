"""Validation and defaults of workflow requests."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_runtime import RequestValidator


MAX_TOPIC_LENGTH = 2000
DEFAULT_MAX_SOURCES = 5
MAX_SOURCES = 20
DEFAULT_MAX_ITERATIONS = 2
MAX_ITERATIONS = 5
DEFAULT_SCORE_THRESHOLD = 8.0


@dataclass(frozen=True, slots=True)
class Notification:
    """A checked completion-webhook target (webhooks/targets.py): URL and secret name."""

    url: str
    secret_name: str


@dataclass(frozen=True, slots=True)
class RunParameters:
    """A workflow's parameters with the defaults filled in."""

    kind: workflow_pb2.WorkflowKind
    sources: tuple[document_pb2.SourceKind, ...]
    max_sources: int
    max_iterations: int
    score_threshold: float
    cache_policy: workflow_pb2.CachePolicy
    cache_scope: str = "global"  # or the caller's key hash (cache_scope.py)
    notification: Notification | None = None  # the completion webhook's target, if any


def resolve_parameters(
    kind: workflow_pb2.WorkflowKind,
    topic: str,
    params: workflow_pb2.WorkflowParameters,
    *,
    prefix: str = "",
) -> RunParameters:
    """Validate a workflow request (every violation at once) and apply the defaults.

    `prefix` is the path of the fields in the request, e.g. "workflow." for RunWorkflow.
    """
    check = RequestValidator()
    if kind not in (
        workflow_pb2.WORKFLOW_KIND_REFLECTION,
        workflow_pb2.WORKFLOW_KIND_RESEARCH,
        workflow_pb2.WORKFLOW_KIND_RESEARCH_REFLECTION,
    ):
        check.add(f"{prefix}kind", "must be REFLECTION, RESEARCH or RESEARCH_REFLECTION")
    check.text(f"{prefix}topic", topic, max_length=MAX_TOPIC_LENGTH)
    where = f"{prefix}parameters."
    check.number(
        f"{where}max_sources",
        params.max_sources,
        low=1,
        high=MAX_SOURCES,
        zero_means_default=True,
    )
    check.number(
        f"{where}max_iterations",
        params.max_iterations,
        low=1,
        high=MAX_ITERATIONS,
        zero_means_default=True,
    )
    check.number(
        f"{where}score_threshold",
        params.score_threshold,
        low=0,
        high=10,
        zero_means_default=True,
    )
    known_sources = set(document_pb2.SourceKind.values()) - {document_pb2.SOURCE_KIND_UNSPECIFIED}
    for index, source in enumerate(params.sources):
        if source not in known_sources:
            check.add(f"{where}sources[{index}]", "must be ARXIV, WEB or LIBRARY")
    if params.cache_policy not in workflow_pb2.CachePolicy.values():
        check.add(f"{where}cache_policy", "must be USE, BYPASS or REFRESH")
    check.check()
    default_sources = (
        (document_pb2.SOURCE_KIND_LIBRARY,) if kind == workflow_pb2.WORKFLOW_KIND_REFLECTION else ()
    )
    return RunParameters(
        kind=kind,
        sources=tuple(dict.fromkeys(params.sources)) or default_sources,
        max_sources=params.max_sources or DEFAULT_MAX_SOURCES,
        max_iterations=params.max_iterations or DEFAULT_MAX_ITERATIONS,
        score_threshold=params.score_threshold or DEFAULT_SCORE_THRESHOLD,
        cache_policy=params.cache_policy or workflow_pb2.CACHE_POLICY_USE,
    )
