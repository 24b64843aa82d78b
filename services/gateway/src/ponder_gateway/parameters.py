"""Validation and defaults of workflow requests."""

from __future__ import annotations

import math
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
MAX_BUDGET_TOKENS = 10_000_000
MAX_BUDGET_USD = 1000.0
_SOURCES = frozenset(document_pb2.SourceKind.values()) - {document_pb2.SOURCE_KIND_UNSPECIFIED}
_CACHE_POLICIES = frozenset(workflow_pb2.CachePolicy.values())
_STRATEGIES = frozenset(workflow_pb2.MultitaskStrategy.values())


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
    max_tokens: int = 0  # model tokens of the workflow; 0: no limit
    max_cost_usd: float = 0.0  # model cost of the workflow in USD; 0: no limit
    multitask_strategy: workflow_pb2.MultitaskStrategy = workflow_pb2.MULTITASK_STRATEGY_JOIN
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
    _check_topic(check, topic, prefix)
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
    for index, source in enumerate(params.sources):
        if source not in _SOURCES:
            check.add(f"{where}sources[{index}]", "must be ARXIV, WEB or LIBRARY")
    if params.cache_policy not in _CACHE_POLICIES:
        check.add(f"{where}cache_policy", "must be USE, BYPASS or REFRESH")
    if not 0 <= params.max_tokens <= MAX_BUDGET_TOKENS:
        check.add(f"{where}max_tokens", f"must be between 0 and {MAX_BUDGET_TOKENS:,}")
    if not (math.isfinite(params.max_cost_usd) and 0 <= params.max_cost_usd <= MAX_BUDGET_USD):
        check.add(f"{where}max_cost_usd", f"must be between 0 and {MAX_BUDGET_USD:g}")
    if params.multitask_strategy not in _STRATEGIES:
        check.add(f"{where}multitask_strategy", "must be JOIN, REJECT or ENQUEUE")
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
        max_tokens=params.max_tokens,
        max_cost_usd=params.max_cost_usd,
        multitask_strategy=params.multitask_strategy or workflow_pb2.MULTITASK_STRATEGY_JOIN,
    )


def _check_topic(check: RequestValidator, topic: str, prefix: str) -> None:
    check.text(f"{prefix}topic", topic, max_length=MAX_TOPIC_LENGTH)


class ParameterShapes:
    """resolve_parameters for a stream of requests: the parameters of each request shape
    (kind, field prefix and the parameters' bytes) are checked and resolved once, while this
    remembers them (up to `max_shapes`, all forgotten at once beyond); the topic is checked
    every time. A shape that fails its checks is never remembered: its request is refused
    with every violation, as resolve_parameters refuses it."""

    def __init__(self, *, max_shapes: int = 1024) -> None:
        self._max = max_shapes
        self._known: dict[tuple[int, str, bytes], RunParameters] = {}

    def resolve(
        self,
        kind: workflow_pb2.WorkflowKind,
        topic: str,
        params: workflow_pb2.WorkflowParameters,
        *,
        prefix: str = "",
    ) -> RunParameters:
        """What resolve_parameters returns (or raises) for the request."""
        shape = (kind, prefix, params.SerializeToString(deterministic=True))
        known = self._known.get(shape)
        if known is None:
            known = resolve_parameters(kind, topic, params, prefix=prefix)
            if len(self._known) >= self._max:
                self._known.clear()
            self._known[shape] = known
            return known
        check = RequestValidator()
        _check_topic(check, topic, prefix)
        check.check()
        return known
