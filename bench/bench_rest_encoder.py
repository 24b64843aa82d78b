"""What the REST facade's MessageEncoder costs per reply, on a recorded cache-hit answer
(`bench/data/cache_hit_reply.json`, 11.6 KB of JSON: a Workflow whose result repeats across
hits while its name, id, times, steps and trace id are new each time).

- fresh: a new workflow around the same result (a cache hit; replays off), each reply its own
  message;
- same: the very same message every call (a replay answers the kept reply again);
- first: a result never seen before (nothing to reuse);
- json_format: protobuf's `MessageToJson` of a fresh reply, for scale.

`to_json` (the body the facade sends) and `to_obj` (the object, for a `response_body` method)
are timed on prebuilt messages, `--rounds` rounds of `--replies` each; the median per reply.

Usage: .venv/bin/python bench/bench_rest_encoder.py [--replies 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from google.protobuf import json_format

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_rest.codec import JsonOptions
from ponder_rest.encoder import MessageEncoder


REPLY = Path(__file__).parent / "data" / "cache_hit_reply.json"
Message = pb.RunReflectionWorkflowResponse


def fresh(reply: Message, index: int, *, new_result: bool) -> Message:
    """A copy of `reply` as a new workflow would answer it: new name, id, trace id and times."""
    copy = pb.RunReflectionWorkflowResponse()
    copy.CopyFrom(reply)
    workflow = copy.workflow
    workflow.id = f"{index:08x}-0000-4000-8000-{index:012x}"
    workflow.name = f"workflows/{workflow.id}"
    workflow.trace_id = f"{index:032x}"
    nanos = 1_764_900_000_000_000_000 + index * 1_234_567
    for stamp in (workflow.create_time, workflow.update_time, workflow.end_time):
        stamp.FromNanoseconds(nanos)
        nanos += 97_531
    for step in workflow.steps:
        step.start_time.FromNanoseconds(nanos + 11)
        step.end_time.FromNanoseconds(nanos + 180_857)
    workflow.execution_time.FromNanoseconds(319_421 + index)
    if new_result:
        workflow.result.text += f" [{index}]"
    return copy


def per_reply(encode: Callable[[Message], object], replies: Iterator[Message], count: int) -> float:
    """Microseconds per call of `encode` over the next `count` replies."""
    batch = [next(replies) for _ in range(count)]
    started = time.perf_counter()
    for reply in batch:
        encode(reply)
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    """Time each case and print a Markdown table (median of the rounds, µs per reply)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reply = json_format.Parse(REPLY.read_text(), pb.RunReflectionWorkflowResponse())
    options = JsonOptions(emit_unpopulated=False)
    counter = iter(range(10**9))

    def fresh_replies() -> Iterator[Message]:
        while True:
            yield fresh(reply, next(counter), new_result=False)

    def first_replies() -> Iterator[Message]:
        while True:
            yield fresh(reply, next(counter), new_result=True)

    def same_replies() -> Iterator[Message]:
        kept = fresh(reply, next(counter), new_result=False)
        while True:
            yield kept

    def reference(message: Message) -> str:
        return json_format.MessageToJson(
            message, indent=None, always_print_fields_with_no_presence=options.emit_unpopulated
        )

    def encoder() -> MessageEncoder:  # one per case: its memos learn from its replies only
        return MessageEncoder(options)

    cases: list[tuple[str, Callable[[Message], object], Callable[[], Iterator[Message]]]] = [
        ("to_json fresh", encoder().to_json, fresh_replies),
        ("to_json same", encoder().to_json, same_replies),
        ("to_json first", encoder().to_json, first_replies),
        ("to_obj fresh", encoder().to_obj, fresh_replies),
        ("to_obj first", encoder().to_obj, first_replies),
        ("json_format fresh", reference, fresh_replies),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _, encode, replies in cases:  # warm the memos and plans
        per_reply(encode, replies(), 50)
    for _ in range(args.rounds):
        for name, encode, replies in cases:  # interleaved: noise hits every case alike
            times[name].append(per_reply(encode, replies(), args.replies))
    text = MessageEncoder(options).to_json(reply)
    print(f"reply: {reply.ByteSize()} bytes of protobuf, {len(text)} of JSON")
    print("| case | µs per reply (median) | min |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} |")


if __name__ == "__main__":
    main()
