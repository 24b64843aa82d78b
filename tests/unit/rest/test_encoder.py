"""MessageEncoder gives exactly json_format's JSON, memoizing large sub-messages."""

from __future__ import annotations

import json

import pytest

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_rest.codec import JsonOptions, message_to_obj
from ponder_rest.encoder import MessageEncoder


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
    assert len(encoder._memo) <= 3


@pytest.mark.parametrize("options", [JsonOptions(), JsonOptions(use_proto_names=True)])
def test_json_text_equals_json_format(options: JsonOptions):
    encoder = MessageEncoder(options, min_bytes=64)
    for name in ("workflows/a-1", "workflows/b-2", "workflows/a-1"):
        message = reply(name, 'same "quoted" text, ünïcode \u0000 ' * 100)
        assert json.loads(encoder.to_json(message)) == message_to_obj(message, options)
    assert len(encoder._fragments) >= 1
