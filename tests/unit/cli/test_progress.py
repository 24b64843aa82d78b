"""The CLI's watch progress: elapsed time from the server's clock, ticking between events and
frozen at the end; the facts and lines it shows."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_cli.progress import WatchProgress


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def at(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((1_800_000_000 + seconds) * 1e9))
    return stamp


def event(
    kind: pb.WorkflowEventType,
    workflow: pb.Workflow,
    seconds: float,
    step: pb.WorkflowStep | None = None,
):
    return pb.WatchWorkflowResponse(
        event_type=kind, workflow=workflow, step=step, event_time=at(seconds)
    )


def running() -> pb.Workflow:
    workflow = pb.Workflow(
        name="workflows/w1",
        id="w1",
        kind=pb.WORKFLOW_KIND_RESEARCH_REFLECTION,
        topic="dense retrieval",
        state=pb.WORKFLOW_STATE_RUNNING,
        create_time=at(0),
    )
    workflow.steps.add(
        name="research",
        state=pb.STEP_STATE_SUCCEEDED,
        document_count=12,
        message="12 candidate documents",
        start_time=at(0),
        end_time=at(1.5),
    )
    workflow.steps.add(name="rank", state=pb.STEP_STATE_SUCCEEDED, document_count=5)
    workflow.steps.add(
        name="reflect",
        state=pb.STEP_STATE_RUNNING,
        iteration=2,
        iteration_scores=[6.5],
        message="iteration 2: refine started",
    )
    return workflow


def test_elapsed_time_ticks_between_events_and_stops_at_the_end():
    clock = Clock()
    progress = WatchProgress(clock)
    workflow = running()
    progress.update(event(pb.WORKFLOW_EVENT_TYPE_SNAPSHOT, workflow, 2.0))
    assert progress.elapsed() == 2.0  # from the server's clock, whatever the local one says
    clock.now += 1.5
    assert progress.elapsed() == 3.5
    workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
    workflow.execution_time.CopyFrom(Duration(seconds=4, nanos=200_000_000))
    progress.update(event(pb.WORKFLOW_EVENT_TYPE_FINISHED, workflow, 4.3))
    clock.now += 10
    assert progress.finished
    assert progress.elapsed() == 4.2


def test_facts_and_lines_say_what_changed():
    progress = WatchProgress(Clock())
    workflow = running()
    snapshot = event(pb.WORKFLOW_EVENT_TYPE_SNAPSHOT, workflow, 1.0)
    progress.update(snapshot)
    assert progress.line(snapshot) == (
        "   1.0s  workflows/w1 (research-reflection) RUNNING: dense retrieval"
    )
    assert progress.facts() == "12 sources found · 5 kept · iteration 2, scores 6.5"
    workflow.steps[2].iteration_scores.append(8.25)
    step = event(pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED, workflow, 2.5, workflow.steps[2])
    step.step.message = "iteration 2: critique done, score 8.2"
    progress.update(step)
    assert (
        progress.line(step)
        == "   2.5s  reflect      RUNNING   iteration 2: critique done, score 8.2"
    )
    assert progress.facts().endswith("iteration 2, scores 6.5 → 8.2")


def test_line_stamps_follow_the_events_even_when_the_run_took_less():
    """The final event comes after the end: its stamp is its own time, not the (shorter)
    execution time, so a pipe's stamps never go back."""
    progress = WatchProgress(Clock())
    workflow = running()
    progress.update(event(pb.WORKFLOW_EVENT_TYPE_SNAPSHOT, workflow, 1.1))
    workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
    workflow.execution_time.CopyFrom(Duration(seconds=1))
    finished = event(pb.WORKFLOW_EVENT_TYPE_FINISHED, workflow, 1.2)
    progress.update(finished)
    assert progress.line(finished).startswith("   1.2s  SUCCEEDED")
    assert progress.elapsed() == 1.0  # the panel shows the run's own time
