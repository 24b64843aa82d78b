"""A watched workflow's progress: a live panel for terminals, one line per change otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_cli.render import (
    FINAL_STATES,
    duration_text,
    kind_name,
    seconds,
    state_name,
    state_text,
)


STEP_MARKS = {
    pb.STEP_STATE_PENDING: ("·", "dim"),
    pb.STEP_STATE_RUNNING: ("…", "cyan"),
    pb.STEP_STATE_SUCCEEDED: ("✓", "green"),
    pb.STEP_STATE_FAILED: ("✗", "red"),
    pb.STEP_STATE_SKIPPED: ("-", "dim"),
}
REFLECTING_STEPS = ("reflect", "summarize")


def _step_seconds(step: pb.WorkflowStep) -> str:
    if not (step.HasField("start_time") and step.HasField("end_time")):
        return ""
    nanos = step.end_time.ToNanoseconds() - step.start_time.ToNanoseconds()
    return duration_text(nanos / 1e9)


def scores_text(step: pb.WorkflowStep) -> str:
    """ "6.5 → 7.8" for a reflection step's critique scores."""
    return " → ".join(f"{score:.1f}" for score in step.iteration_scores)


class WatchProgress:
    """What a watch has seen so far. `update` takes each event; `__rich__` draws the live
    panel (elapsed time ticking between events); `line` says what one event changed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.workflow: pb.Workflow | None = None
        self.events = 0
        self._clock = clock
        self._server_elapsed = 0.0  # seconds from creation to the last event, server clock
        self._seen_at = clock()  # when the last event arrived, local clock
        self._spinner = Spinner("dots", style="cyan")

    @property
    def finished(self) -> bool:
        """Whether the workflow reached a final state."""
        return self.workflow is not None and self.workflow.state in FINAL_STATES

    def update(self, event: pb.WatchWorkflowResponse) -> None:
        """Take one event of the watch stream."""
        self.workflow = event.workflow
        self.events += 1
        self._seen_at = self._clock()
        created = event.workflow.create_time.ToNanoseconds()
        if event.HasField("event_time") and created:
            self._server_elapsed = max(0.0, (event.event_time.ToNanoseconds() - created) / 1e9)

    def elapsed(self) -> float:
        """Seconds since the workflow was created: final once it ended, ticking until then."""
        if self.workflow is not None and self.finished:
            took = seconds(self.workflow)
            if took is not None:
                return took
        if self.workflow is None or self.finished:
            return self._server_elapsed
        return self._server_elapsed + (self._clock() - self._seen_at)

    def facts(self) -> str:
        """Sources found and kept, the reflection's iteration and scores, so far."""
        if self.workflow is None:
            return ""
        steps = {step.name: step for step in self.workflow.steps}
        facts = []
        if "research" in steps and steps["research"].document_count:
            facts.append(f"{steps['research'].document_count} sources found")
        if "rank" in steps and steps["rank"].document_count:
            facts.append(f"{steps['rank'].document_count} kept")
        for name in REFLECTING_STEPS:
            step = steps.get(name)
            if step is not None and step.iteration:
                fact = f"iteration {step.iteration}"
                if step.iteration_scores:
                    fact += f", scores {scores_text(step)}"
                facts.append(fact)
        if self.workflow.cache.hit:
            facts.append(f"cache hit (similarity {self.workflow.cache.similarity:.2f})")
        return " · ".join(facts)

    def line(self, event: pb.WatchWorkflowResponse) -> str:
        """A plain line for one event (no terminal needed), stamped with the time from the
        workflow's creation to the event, on the server's clock (so stamps never go back)."""
        stamp = f"{self._server_elapsed:6.1f}s"
        workflow = event.workflow
        if event.event_type == pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED:
            step = event.step
            state = pb.StepState.Name(step.state).removeprefix("STEP_STATE_")
            return f"{stamp}  {step.name:<12} {state:<9} {step.message}".rstrip()
        if event.event_type == pb.WORKFLOW_EVENT_TYPE_SNAPSHOT:
            return (
                f"{stamp}  {workflow.name} ({kind_name(workflow.kind)}) "
                f"{state_name(workflow.state)}: {workflow.topic}"
            )
        facts = self.facts()
        return f"{stamp}  {state_name(workflow.state)}" + (f" · {facts}" if facts else "")

    def _steps(self, workflow: pb.Workflow) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(justify="right", style="dim", no_wrap=True)
        table.add_column(overflow="fold")
        for step in workflow.steps:
            if step.state == pb.STEP_STATE_RUNNING and not self.finished:
                mark: RenderableType = self._spinner
            else:
                symbol, style = STEP_MARKS.get(step.state, ("?", ""))
                mark = Text(symbol, style=style)
            table.add_row(mark, step.name, _step_seconds(step), step.message)
        return table

    def __rich__(self) -> RenderableType:
        if self.workflow is None:
            return Text("waiting for the first event…", style="dim")
        workflow = self.workflow
        title = Text.assemble((workflow.id, "bold"), "  ", kind_name(workflow.kind), "  ")
        title.append_text(state_text(workflow.state))
        title.append(f"  {self.elapsed():.1f}s")
        body: list[RenderableType] = [Text(workflow.topic, style="italic"), self._steps(workflow)]
        facts = self.facts()
        if facts:
            body.append(Text(facts, style="dim"))
        return Panel(Group(*body), title=title, title_align="left", expand=False)


class Waiting:
    """A spinner with the seconds spent waiting for a synchronous call."""

    def __init__(self, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._clock = clock
        self._started = clock()
        self._spinner = Spinner("dots", style="cyan")

    def __rich__(self) -> RenderableType:
        self._spinner.update(text=f"{self._what}  {self._clock() - self._started:.1f}s")
        return self._spinner
