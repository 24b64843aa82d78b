"""What makes two requests identical, and the in-process index of running workflows."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.coalescing import Coalescer, MemoryRunningIndex, identity
from ponder_gateway.parameters import RunParameters, resolve_parameters
from ponder_runtime import NotFoundError


def params(**given: Any) -> RunParameters:
    """Resolved parameters of a REFLECTION request."""
    return resolve_parameters(
        pb.WORKFLOW_KIND_REFLECTION,
        "t",
        pb.WorkflowParameters(**given),
    )


def test_identity_ignores_spelling_defaults_order_and_strategy() -> None:
    """Case, spacing, explicit defaults, source order and the strategy do not count; the
    tenant, scope, parameters and budgets do."""
    base = params()
    arxiv, web = document_pb2.SOURCE_KIND_ARXIV, document_pb2.SOURCE_KIND_WEB
    same = [
        identity("a", "Dense  Retrieval ", params(max_sources=5, max_iterations=2)),
        identity("a", "dense retrieval", params(multitask_strategy=pb.MULTITASK_STRATEGY_REJECT)),
    ]
    assert set(same) == {identity("a", "dense retrieval", base)}
    assert identity("a", "x", params(sources=[arxiv, web])) == identity(
        "a", "x", params(sources=[web, arxiv])
    )
    different = [
        identity("b", "dense retrieval", base),
        identity("a", "dense retrieval", dataclasses.replace(base, cache_scope="key-1")),
        identity("a", "dense retrieval", params(max_tokens=100)),
        identity("a", "dense retrieval", params(cache_policy=pb.CACHE_POLICY_BYPASS)),
        identity("a", "sparse retrieval", base),
    ]
    assert len({*different, same[0]}) == 6


async def test_the_first_claim_leads_and_a_finished_holder_is_taken_over() -> None:
    """Of many concurrent claims one leads and the others see it; once its workflow has
    ended (or never appears) the next claim takes over."""
    states: dict[str, int] = {}

    async def get(name: str) -> pb.Workflow:
        if name not in states:
            raise NotFoundError(name)
        return pb.Workflow(name=name, state=states[name])  # type: ignore[arg-type]  # an int

    index = MemoryRunningIndex()
    twins = Coalescer(index, get)
    states["workflows/w0"] = pb.WORKFLOW_STATE_RUNNING
    found = await asyncio.gather(*(twins.lead_or_join("k", f"workflows/w{i}") for i in range(50)))
    assert found[0] is None
    assert {w.name for w in found[1:] if w is not None} == {"workflows/w0"}
    states["workflows/w0"] = pb.WORKFLOW_STATE_SUCCEEDED
    assert await twins.lead_or_join("k", "workflows/next") is None
    assert (await twins.ended("workflows/w0")).state == pb.WORKFLOW_STATE_SUCCEEDED
    await twins.release("k", "workflows/w0")  # not its holder any more: nothing happens
    assert await index.claim("k", "workflows/other") == "workflows/next"
