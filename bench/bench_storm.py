"""Upstream storm: reflection workflows against a model that rate-limits and fails (issue 22).

Usage: nice .venv/bin/python bench/bench_storm.py [--workflows 500] [--concurrency 40]

The stack of real processes (gateway, research, reflection, embedding) runs reflection on the
fake OpenAI API (`ponder_devstack.fake_openai`): one second per answer, 30% of calls 429 with
`Retry-After: 1`, 5% 500. `--workflows` synchronous reflection workflows (RunWorkflow, cache
bypassed, a 120 s deadline each) run `--concurrency` at a time. Side by side, in one run, with
reflection restarted between them:

1. `count-bounded`: the old policy (5 attempts at most, then fail), for comparison;
2. `deadline-bounded`: the default policy (retry while the deadline allows another attempt,
   a 100-attempt safety cap, the retry budget);
3. `all-429`: every call 429 (the budget stops a retry storm; calls per workflow stay small);
4. `down`: every call 500 (the breaker opens: workflows fail fast, not after their deadline);
5. `gone`: the model server shut, every connection refused (the same, from the breaker).

Reports per scenario: succeeded / failed, p50 / p99 workflow latency, upstream calls per
workflow (every HTTP request the model server saw, retries included). Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack, StackPorts, files_in
from ponder_devstack.fake_apis import serve_fake_arxiv, serve_fake_tavily
from ponder_devstack.fake_openai import Behaviour, FakeOpenAI, serve_fake_openai
from ponder_devstack.measure import percentile


STORM = {"latency": 1.0, "rate_limit_fraction": 0.3, "retry_after": "1", "error_fraction": 0.05}


@dataclass(frozen=True)
class Scenario:
    """A model behaviour, the reflection settings it runs under, and how many workflows."""

    name: str
    behaviour: Mapping[str, object]
    settings: Mapping[str, str]
    workflows: int
    gone: bool = False  # the model server is shut: connections refused (run it last)


@dataclass
class Result:
    """What a scenario measured."""

    outcomes: Counter[str]
    seconds: list[float]
    failures: Counter[str]
    model_calls: int
    wall: float


async def run_load(gateway: str, count: int, concurrency: int, deadline: float) -> Result:
    """`count` reflection workflows, `concurrency` at a time; outcomes and latencies."""
    outcomes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    seconds: list[float] = []
    queue = list(range(count))
    async with grpc.aio.insecure_channel(gateway) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)

        async def worker() -> None:
            while queue:
                queue.pop()
                workflow = pb.Workflow(
                    kind=pb.WORKFLOW_KIND_REFLECTION,
                    topic=f"How do language agents use self-reflection? ({uuid.uuid4().hex[:8]})",
                    parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS),
                )
                started = time.monotonic()
                try:
                    reply = await stub.RunWorkflow(
                        pb.RunWorkflowRequest(workflow=workflow), timeout=deadline
                    )
                    state = pb.WorkflowState.Name(reply.workflow.state)
                    outcomes["succeeded" if state == "WORKFLOW_STATE_SUCCEEDED" else state] += 1
                except grpc.aio.AioRpcError as exc:
                    outcomes["failed"] += 1
                    failures[f"{exc.code().name}: {(exc.details() or '')[:150]}"] += 1
                seconds.append(time.monotonic() - started)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.monotonic() - started
    return Result(outcomes, seconds, failures, 0, wall)


async def restart_reflection(
    stack: Stack, base: Mapping[str, str], settings: Mapping[str, str]
) -> None:
    """Restart reflection with `settings` on top of the stack's base environment."""
    stack.extra_env = {**base, **settings}
    stack.signal("reflection", signal.SIGTERM)
    stack.restart("reflection")
    await stack.wait_serving("reflection")


async def scenario(
    stack: Stack,
    base: Mapping[str, str],
    model: FakeOpenAI,
    plan: Scenario,
    args: argparse.Namespace,
) -> Result:
    """Restart reflection with the plan's settings, set the model's behaviour, run the load."""
    await restart_reflection(stack, base, plan.settings)
    model.reset()  # forgets the counts and the behaviour
    model.behaviour = Behaviour(**plan.behaviour)  # type: ignore[arg-type]
    if plan.gone:
        model.close()
    gateway = stack.service("gateway").address
    result = await run_load(gateway, plan.workflows, args.concurrency, args.deadline)
    result.model_calls = sum(model.calls_by_status.values())
    model.behaviour = Behaviour()
    return result


def table(results: list[tuple[Scenario, Result]]) -> str:
    """The Markdown report."""
    lines = [
        "| scenario | workflows | succeeded | failed | p50 s | p99 s | max s | model calls "
        "per workflow | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for plan, result in results:
        count = sum(result.outcomes.values())
        lines.append(
            f"| {plan.name} | {count} | {result.outcomes['succeeded']} | "
            f"{count - result.outcomes['succeeded']} | "
            f"{statistics.median(result.seconds):.1f} | {percentile(result.seconds, 0.99):.1f} | "
            f"{max(result.seconds):.1f} | {result.model_calls / count:.2f} | {result.wall:.0f} |"
        )
    for plan, result in results:
        for reason, n in result.failures.most_common(3):
            lines.append(f"\n{plan.name}: {n} x {reason}")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    """Start the stack once, run the scenarios side by side, print the table."""
    model = serve_fake_openai()
    arxiv, tavily = serve_fake_arxiv(), serve_fake_tavily()
    old = {"PONDER_REFLECTION_MAX_ATTEMPTS": "5", "PONDER_REFLECTION_RETRY_BUDGET_RATIO": "10"}
    plans = [
        Scenario("count-bounded (old: 5 attempts)", STORM, old, args.workflows),
        Scenario("deadline-bounded (new default)", STORM, {}, args.workflows),
        Scenario("all-429 (budget)", {**STORM, "rate_limit_fraction": 1.0}, {}, args.concurrency),
        Scenario("down: every call 500 (breaker)", {"status": 500}, {}, args.concurrency),
        Scenario("gone: connection refused (breaker)", {}, {}, args.concurrency, gone=True),
    ]
    if args.only:
        plans = [p for p in plans if p.name.startswith(args.only)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = {
            "PONDER_LOG_LEVEL": "INFO",  # research says "library indexed" at INFO
            "OPENAI_API_KEY": "sk-storm",
            "OPENAI_BASE_URL": model.base_url,
            "PONDER_REFLECTION_PROVIDER": "openai",
            "PONDER_REFLECTION_MAX_CONCURRENCY": str(args.model_slots),
            "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
            "PONDER_GATEWAY_MAX_RUNNING_WORKFLOWS": str(args.concurrency),
            "PONDER_GATEWAY_REPLAY_SECONDS": "0",
            **files_in(root),
            "PONDER_RESEARCH_ARXIV_API_URL": f"{arxiv.base_url}/api/query",
            "PONDER_RESEARCH_ARXIV_MIN_INTERVAL_SECONDS": "0",
            "PONDER_RESEARCH_TAVILY_API_URL": tavily.base_url,
            "TAVILY_API_KEY": "tvly-storm",
        }
        stack = Stack(ports=StackPorts.free(), log_dir=root, extra_env=base)
        stack.start()
        results = []
        try:
            await stack.wait_ready(timeout=240)
            await stack.wait_for_log("research", "library indexed", timeout=240)
            for plan in plans:
                result = await scenario(stack, base, model, plan, args)
                results.append((plan, result))
                print(f"{plan.name}: {dict(result.outcomes)} in {result.wall:.0f}s", flush=True)
        finally:
            stack.stop()
            model.close()
            arxiv.close()
            tavily.close()
    print(table(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--model-slots", type=int, default=64, help="reflection's call limit")
    parser.add_argument("--only", default="", help="run the scenarios whose name starts so")
    asyncio.run(main(parser.parse_args()))
