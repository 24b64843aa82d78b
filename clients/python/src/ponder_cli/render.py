"""How workflows look in a terminal (rich renderables) and to scripts (one JSON object a line)."""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from ponder.research.v1 import research_service_pb2 as research_pb
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb


STATE_STYLES: dict[int, str] = {
    pb.WORKFLOW_STATE_PENDING: "dim",
    pb.WORKFLOW_STATE_RUNNING: "cyan",
    pb.WORKFLOW_STATE_SUCCEEDED: "green",
    pb.WORKFLOW_STATE_FAILED: "red",
    pb.WORKFLOW_STATE_CANCELLED: "yellow",
}
FINAL_STATES = frozenset(
    {pb.WORKFLOW_STATE_SUCCEEDED, pb.WORKFLOW_STATE_FAILED, pb.WORKFLOW_STATE_CANCELLED}
)


def to_json(message: Message) -> str:
    """A message as one line of proto3 JSON (the REST facade's field names)."""
    return json_format.MessageToJson(message, indent=None, ensure_ascii=False)


def state_name(state: int) -> str:
    """ "SUCCEEDED" for WORKFLOW_STATE_SUCCEEDED."""
    return pb.WorkflowState.Name(state).removeprefix("WORKFLOW_STATE_")


def kind_name(kind: int) -> str:
    """ "research-reflection" for WORKFLOW_KIND_RESEARCH_REFLECTION (the CLI's spelling)."""
    return pb.WorkflowKind.Name(kind).removeprefix("WORKFLOW_KIND_").lower().replace("_", "-")


def source_name(source: int) -> str:
    """ "arxiv" for SOURCE_KIND_ARXIV."""
    return document_pb2.SourceKind.Name(source).removeprefix("SOURCE_KIND_").lower()


def seconds(workflow: pb.Workflow) -> float | None:
    """The workflow's execution time in seconds, once it has one."""
    if not workflow.HasField("execution_time"):
        return None
    return workflow.execution_time.ToNanoseconds() / 1e9


def duration_text(took: float) -> str:
    """ "0.014s", "3.2s": short times keep their milliseconds."""
    return f"{took:.3f}s" if took < 1 else f"{took:.1f}s"


def state_text(state: int) -> Text:
    """The state's name in its color."""
    return Text(state_name(state), style=STATE_STYLES.get(state, ""))


def headline(workflow: pb.Workflow, replay_age_seconds: float | None = None) -> Text:
    """One line: id, kind, state, time, and where the answer came from."""
    line = Text.assemble(
        (workflow.id or workflow.name, "bold"), "  ", kind_name(workflow.kind), "  "
    )
    line.append_text(state_text(workflow.state))
    took = seconds(workflow)
    if took is not None:
        line.append(f"  in {duration_text(took)}")
    if workflow.cache.hit:
        line.append(f"  cache hit (similarity {workflow.cache.similarity:.2f})", style="magenta")
    if replay_age_seconds is not None:
        line.append(f"  replayed ({replay_age_seconds:.1f}s old)", style="magenta")
    return line


def _year(document: document_pb2.Document) -> str:
    if not document.HasField("published_time"):
        return ""
    return f" ({document.published_time.ToDatetime().year})"


def _authors(document: document_pb2.Document) -> str:
    names = list(document.authors)
    if not names:
        return ""
    return f" — {names[0]} et al." if len(names) > 2 else f" — {' and '.join(names)}"


def citations_view(result: pb.WorkflowResult) -> Text:
    """The numbered references of the result's `[n]` markers: title, authors, year, the cited
    passage's place (library documents), URL."""
    documents = {doc.id: doc for doc in result.sources}
    text = Text()
    for citation in sorted(result.citations, key=lambda c: c.index):
        document = documents.get(citation.document_id)
        text.append(f"[{citation.index}] ", style="bold")
        text.append(citation.title or citation.document_id)
        if document is not None:
            text.append(_authors(document) + _year(document), style="dim")
        if citation.HasField("passage"):
            text.append(f"\n    {passage_place(citation.passage)}", style="dim")
        if citation.url:
            text.append(f"\n    {citation.url}", style="blue underline")
        text.append("\n")
    text.rstrip()
    return text


def passage_place(passage: document_pb2.Passage) -> str:
    """Where a cited passage is: its section or page, then its characters."""
    where = f"§ {passage.heading}" if passage.heading else ""
    if passage.page:
        where = f"page {passage.page}" + (f", {where}" if where else "")
    span = f"characters {passage.start_offset}-{passage.end_offset}"
    return f"{where}, {span}" if where else span


def _source_statuses(result: pb.WorkflowResult) -> Text:
    parts = []
    for status in result.source_statuses:
        state = research_pb.SourceState.Name(status.state).removeprefix("SOURCE_STATE_")
        part = f"{source_name(status.source)} {state.lower()}"
        if status.state == research_pb.SOURCE_STATE_OK:
            part += f" ({status.result_count})"
        parts.append(part)
    return Text("sources searched: " + ", ".join(parts), style="dim") if parts else Text()


def cache_view(cache: pb.CacheInfo) -> Text:
    """What the semantic cache decided for the workflow and why (empty when no lookup ran)."""
    verdict = cache.verdict
    if verdict == pb.CACHE_VERDICT_UNSPECIFIED:
        return Text()
    if verdict == pb.CACHE_VERDICT_EMPTY:
        return Text("cache: nothing cached yet in this namespace", style="dim")
    near = f'"{cache.candidate_topic}" (similarity {cache.similarity:.2f})'
    if verdict == pb.CACHE_VERDICT_BELOW_THRESHOLD:
        said = f"cache: miss; closest cached topic {near} is not similar enough"
    elif verdict == pb.CACHE_VERDICT_REJECTED:
        said = f"cache: not served; closest cached topic {near} was refused: {cache.reason}"
    else:
        said = f"cache: served from {cache.source_workflow}, cached as {near}: {cache.reason}"
    return Text(said, style="dim")


def result_view(
    workflow: pb.Workflow, replay_age_seconds: float | None = None, *, markdown: bool = True
) -> Group:
    """A finished (or failed) workflow, readably: the text (rendered as Markdown for a terminal,
    as its Markdown source otherwise), then its references."""
    parts: list[RenderableType] = [
        headline(workflow, replay_age_seconds),
        Text(f"topic: {workflow.topic}", style="dim"),
        cache_view(workflow.cache),
    ]
    result = workflow.result
    if workflow.state == pb.WORKFLOW_STATE_SUCCEEDED:
        text = Markdown(result.text) if markdown else Text(result.text)
        parts += [Text(""), text, Text("")]
        if result.citations:
            parts += [Text("References", style="bold underline"), citations_view(result)]
        facts = [f"{len(result.sources)} sources"]
        if result.iterations:
            facts.append(f"score {result.score:.1f} after {len(result.iterations)} iteration(s)")
        facts.append(f"{result.provider}/{result.model}" + (" (offline)" if result.offline else ""))
        usage = workflow.usage
        if usage.total_tokens:
            facts.append(f"{usage.total_tokens} tokens, ${usage.cost_usd:.4f}")
        parts.append(Text(" · ".join(facts), style="dim"))
        parts.append(_source_statuses(result))
    if workflow.HasField("error"):
        parts.append(Text(f"error: {workflow.error.message}", style="red"))
    parts += [Text(f"warning: {warning}", style="yellow") for warning in workflow.warnings]
    if workflow.HasField("notification"):
        parts.append(Text(webhook_text(workflow), style="dim"))
    if workflow.trace_id:
        parts.append(Text(f"trace id: {workflow.trace_id}", style="dim"))
    return Group(*parts)


def webhook_text(workflow: pb.Workflow) -> str:
    """The completion webhook's delivery in one line."""
    delivery = workflow.notification_delivery
    state = pb.NotificationDeliveryState.Name(delivery.state).removeprefix(
        "NOTIFICATION_DELIVERY_STATE_"
    )
    text = f"webhook to {workflow.notification.url}: {state.lower()}"
    if delivery.attempts:
        text += f" after {delivery.attempts} attempt{'s' if delivery.attempts > 1 else ''}"
    if delivery.last_error:
        text += f" (last error: {delivery.last_error})"
    return text


def workflows_table(workflows: list[pb.Workflow]) -> Table:
    """Workflows as a table, one row each."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "KIND", "STATE", "CREATED (UTC)", "TIME", "TOPIC"):
        table.add_column(column, overflow="fold")  # never cut an id: it is copied from here
    for workflow in workflows:
        created = workflow.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        took = seconds(workflow)
        table.add_row(
            workflow.id,
            kind_name(workflow.kind),
            state_text(workflow.state),
            created,
            duration_text(took) if took is not None else "",
            workflow.topic,
        )
    return table
