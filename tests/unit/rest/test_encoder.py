"""MessageEncoder gives exactly json_format's JSON, memoizing sub-messages."""

from __future__ import annotations

import json
import random

import pytest

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_rest.codec import JsonOptions, dumps, message_to_obj
from ponder_rest.encoder import MessageEncoder


OPTIONS = [
    JsonOptions(),
    JsonOptions(use_proto_names=True),
    JsonOptions(emit_unpopulated=False),
    JsonOptions(use_proto_names=True, emit_unpopulated=False),
]


def reply(name: str, text: str) -> pb.RunReflectionWorkflowResponse:
    """A workflow answer whose result is large (several KB)."""
    workflow = pb.Workflow(
        name=name,
        id=name.split("/")[1],
        topic="t",
        kind=pb.WORKFLOW_KIND_REFLECTION,
        state=pb.WORKFLOW_STATE_SUCCEEDED,
    )
    workflow.result.text = text
    workflow.execution_time.FromMilliseconds(1500)
    workflow.create_time.FromSeconds(1_700_000_000)
    return pb.RunReflectionWorkflowResponse(workflow=workflow)


@pytest.mark.parametrize(
    "options",
    [JsonOptions(), JsonOptions(use_proto_names=True), JsonOptions(emit_unpopulated=False)],
)
def test_same_json_as_json_format(options: JsonOptions):
    encoder = MessageEncoder(options, min_bytes=64)
    for name in ("workflows/a-1", "workflows/b-2"):
        message = reply(name, "cited text [1] " * 200)
        assert encoder.to_obj(message) == message_to_obj(message, options)


def test_large_sub_messages_are_shared_between_equal_answers():
    encoder = MessageEncoder(JsonOptions(), min_bytes=64)
    first = encoder.to_obj(reply("workflows/a-1", "same text " * 300))
    second = encoder.to_obj(reply("workflows/b-2", "same text " * 300))
    assert first["workflow"]["name"] == "workflows/a-1"
    assert second["workflow"]["name"] == "workflows/b-2"
    assert first["workflow"]["result"] is second["workflow"]["result"]
    other = encoder.to_obj(reply("workflows/c-3", "other text " * 300))
    assert other["workflow"]["result"]["text"].startswith("other text")
    assert json.loads(json.dumps(other)) == message_to_obj(
        reply("workflows/c-3", "other text " * 300), JsonOptions()
    )


def test_memo_is_bounded():
    encoder = MessageEncoder(JsonOptions(), min_bytes=64, max_entries=3)
    for index in range(10):
        encoder.to_obj(reply(f"workflows/w-{index}", f"text {index} " * 100))
        encoder.to_json(reply(f"workflows/w-{index}", f"text {index} " * 100))
    assert len(encoder._memo) == 3
    assert len(encoder._fragments) == 3


@pytest.mark.parametrize("options", [JsonOptions(), JsonOptions(use_proto_names=True)])
def test_json_text_equals_json_format(options: JsonOptions):
    encoder = MessageEncoder(options, min_bytes=64)
    for name in ("workflows/a-1", "workflows/b-2", "workflows/a-1"):
        message = reply(name, 'same "quoted" text, ünïcode \u0000 ' * 100)
        assert encoder.to_json(message) == dumps(message_to_obj(message, options))
    assert len(encoder._fragments) >= 1


def workflow_reply(
    rng: random.Random, index: int, result: pb.WorkflowResult
) -> pb.RunReflectionWorkflowResponse:
    """A new workflow around `result`, with small parts that repeat (parameters, cache) or not
    (times, steps), a large cache part now and then (after the result: a large field last)."""
    message = reply(f"workflows/w-{index}", "")
    workflow = message.workflow
    workflow.result.CopyFrom(result)
    workflow.parameters.max_sources = rng.choice([3, 5])
    workflow.parameters.sources.append(document_pb2.SOURCE_KIND_LIBRARY)
    workflow.cache.hit = True
    workflow.cache.candidate_topic = rng.choice(["topic", "a long topic " * 20])
    workflow.create_time.FromNanoseconds(1_764_900_000_000_000_000 + index * 1_234_567)
    step = workflow.steps.add(name="cache_lookup", message="hit")
    step.start_time.FromNanoseconds(1_764_900_000_000_000_000 + index * 1_000)
    return message


@pytest.mark.parametrize("options", OPTIONS)
def test_every_answer_is_json_format_byte_for_byte(options: JsonOptions):
    """Fresh answers around results that repeat, first-time results, the same answer again, the
    same answer changed after it was written: each text and object is json_format's, whichever
    parts are memoized or paused at the time."""
    encoder = MessageEncoder(options, min_bytes=256, max_entries=8)
    rng = random.Random(7)
    results = [reply("workflows/r-0", f"result {n} [1] " * 60).workflow.result for n in range(3)]
    answers: list[pb.RunReflectionWorkflowResponse] = []
    for index in range(400):
        choice = rng.random()
        if choice < 0.15 and answers:  # a replay: the very same message again
            message = rng.choice(answers)
            if rng.random() < 0.2:  # changed since (nobody should, but it must not show)
                message.workflow.trace_id = f"{index:032x}"
        elif choice < 0.25:  # a result never seen
            message = reply(f"workflows/n-{index}", f"new result {index} " * 60)
        else:
            message = workflow_reply(rng, index, rng.choice(results))
        answers = [*answers[-5:], message]
        expected = message_to_obj(message, options)
        assert encoder.to_json(message) == dumps(expected)
        assert encoder.to_obj(message) == expected


def test_a_changed_answer_is_not_served_from_the_memo():
    """An answer written, written again (kept), then changed: the change is in the next text."""
    encoder = MessageEncoder(JsonOptions(), min_bytes=64)
    message = reply("workflows/a-1", "same text " * 300)
    first = encoder.to_json(message)
    assert encoder.to_json(message) == first
    assert encoder.to_json(message) == first
    message.workflow.name = "workflows/b-2"
    assert json.loads(encoder.to_json(message))["workflow"]["name"] == "workflows/b-2"


@pytest.mark.parametrize("options", OPTIONS)
def test_without_memo_the_same_json(options: JsonOptions):
    """max_entries=0 turns the memos off; the JSON is the same."""
    encoder = MessageEncoder(options, min_bytes=64, max_entries=0)
    for name in ("workflows/a-1", "workflows/a-1", "workflows/b-2"):
        message = reply(name, "text " * 100)
        assert encoder.to_json(message) == dumps(message_to_obj(message, options))
        assert encoder.to_obj(message) == message_to_obj(message, options)
    assert len(encoder._fragments) == 0
