"""Durability of the temporal engine under worker crashes.

Usage: .venv/bin/python bench/bench_durability.py [--workflows 20] [--workers 3]
       [--kill-every 2.0] [--latency 0.5]

Runs N reflection workflows (two iterations each: draft, critique, refine, critique) on the
temporal engine with the model slowed to `--latency` s per call, and kill -9's a random
worker every `--kill-every` s while any runs (starting a fresh one each time). Then counts
workflows not SUCCEEDED (lost) and model calls finished beyond what the finished workflows
needed (duplicate: 2 calls per iteration each). Prints one line:
`workflows N, worker kills K, lost L, duplicate model calls D`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.engine_rig import rig, wait_all
from ponder_devstack.fake_openai import Behaviour, serve_fake_openai


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=2.0)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    fake = serve_fake_openai()
    with tempfile.TemporaryDirectory() as tmp:
        async with rig(Path(tmp), fake, workers=args.workers, capacity=args.workflows) as bench:
            fake.behaviour = Behaviour(latency=args.latency)
            fake.requests.clear()
            fake.calls_by_status.clear()
            async with grpc.aio.insecure_channel(bench.address("temporal")) as channel:
                stub = workflow_grpc.WorkflowServiceStub(channel)
                params = pb.WorkflowParameters(
                    cache_policy=pb.CACHE_POLICY_BYPASS, max_iterations=2, score_threshold=10
                )
                created = await asyncio.gather(
                    *(
                        stub.CreateWorkflow(
                            pb.CreateWorkflowRequest(
                                workflow=pb.Workflow(
                                    kind=pb.WORKFLOW_KIND_REFLECTION,
                                    topic=f"durable reflection on agents, case {i}",
                                    parameters=params,
                                )
                            ),
                            timeout=60,
                        )
                        for i in range(args.workflows)
                    )
                )
                names = [reply.workflow.name for reply in created]
                waiting = asyncio.create_task(wait_all(stub, names, timeout=600))
                kills = 0
                while not waiting.done():
                    await asyncio.sleep(args.kill_every)
                    alive = bench.workers.running()
                    if waiting.done() or not alive:
                        break
                    victim = chance.choice(alive)
                    victim.send_signal(signal.SIGKILL)
                    await asyncio.to_thread(victim.wait)
                    bench.workers.start_one()
                    kills += 1
                final = await waiting
    fake.close()
    succeeded = [w for w in final.values() if w.state == pb.WORKFLOW_STATE_SUCCEEDED]
    needed = sum(2 * len(w.result.iterations) for w in succeeded)  # draft + critique (+ refine)
    duplicates = fake.calls_by_status[200] - needed
    lost = args.workflows - len(succeeded)
    reasons = Counter(
        f"{pb.WorkflowState.Name(w.state)}: {w.error.message[:120]}"
        for w in final.values()
        if w.state != pb.WORKFLOW_STATE_SUCCEEDED
    )
    for reason, count in reasons.items():
        print(f"  lost {count}: {reason}", file=sys.stderr)
    print(
        f"workflows {args.workflows}, worker kills {kills}, lost {lost}, "
        f"duplicate model calls {duplicates}"
    )


if __name__ == "__main__":
    asyncio.run(main())
