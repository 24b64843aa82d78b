"""`ponder`: run, watch, get, list, cancel and delete workflows and check health, over gRPC."""

from __future__ import annotations

import enum
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, ParamSpec

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_cli.errors import EXIT_CODES_HELP, CliError, ExitCode
from ponder_cli.gateway import Gateway, RunOptions, Target, workflow_name
from ponder_cli.library import library_app
from ponder_cli.options import Address, ApiKey, Json, Tls
from ponder_cli.progress import Waiting, WatchProgress
from ponder_cli.render import FINAL_STATES, headline, result_view, to_json, workflows_table


class Kind(enum.StrEnum):
    """Workflow kinds as the CLI spells them (member names are the proto's, unprefixed)."""

    REFLECTION = "reflection"
    RESEARCH = "research"
    RESEARCH_REFLECTION = "research-reflection"


class Source(enum.StrEnum):
    """Sources a workflow may search."""

    ARXIV = "arxiv"
    WEB = "web"
    LIBRARY = "library"


class Cache(enum.StrEnum):
    """Cache policies."""

    USE = "use"
    BYPASS = "bypass"
    REFRESH = "refresh"


class Multitask(enum.StrEnum):
    """What to do when an identical workflow is still running."""

    JOIN = "join"
    REJECT = "reject"
    ENQUEUE = "enqueue"


FILTER_EXAMPLES = (
    "state != FAILED",
    "kind = research AND (state = SUCCEEDED OR state = CANCELLED)",
    'topic:"retrieval" AND NOT kind = reflection',
    'create_time >= "2026-01-01T00:00:00Z"',
)


class State(enum.StrEnum):
    """Workflow states, for `ponder list --state`."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


Timeout = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the call.")]
WorkflowId = Annotated[str, typer.Argument(help="The workflow's id, or its name workflows/<id>.")]
DEFAULT_ADDRESS = "127.0.0.1:50051"
PIPE_WIDTH = 160  # columns of tables written to a pipe or a file (rich assumes 80)
P = ParamSpec("P")

app = typer.Typer(
    name="ponder",
    help="Ponder's command-line client: research-and-reflection workflows over gRPC.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(library_app)


@dataclass
class Output:
    """Where results go: JSON lines, a live terminal, or plain text (a pipe or a file)."""

    console: Console
    json: bool

    @property
    def live(self) -> bool:
        """Whether to draw live progress (a terminal, and not --json)."""
        return self.console.is_terminal and not self.json

    def emit(self, line: str) -> None:
        """One line of JSON or plain progress, flushed at once (for pipes)."""
        print(line, flush=True)

    def workflow(self, workflow: pb.Workflow, replay_age_seconds: float | None = None) -> None:
        """A workflow: JSON, or its readable view (progress while it runs)."""
        if self.json:
            self.emit(to_json(workflow))
        elif workflow.state in FINAL_STATES:
            self.console.print(result_view(workflow, replay_age_seconds, markdown=self.live))
        else:
            progress = WatchProgress()
            progress.update(
                pb.WatchWorkflowResponse(
                    event_type=pb.WORKFLOW_EVENT_TYPE_SNAPSHOT,
                    workflow=workflow,
                    event_time=workflow.update_time,
                )
            )
            self.console.print(progress)


def _reporting(command: Callable[P, int]) -> Callable[P, None]:
    """Run a command, report a CliError or Ctrl-C on stderr, and exit with the status."""

    @functools.wraps(command)
    def reported(*args: P.args, **kwargs: P.kwargs) -> None:
        errors = Console(stderr=True, highlight=False)
        try:
            code = command(*args, **kwargs)
        except CliError as exc:
            errors.print(f"ponder: {exc.message}", markup=False, soft_wrap=True)
            code = exc.exit_code
        except KeyboardInterrupt:
            errors.print("ponder: interrupted")
            code = ExitCode.INTERRUPTED
        except BrokenPipeError:  # `ponder watch ID | head`: stop quietly, as the shell expects
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = ExitCode.PIPE_CLOSED
        raise typer.Exit(int(code))

    return reported


@contextmanager
def _session(
    address: str, key: str | None, tls: bool, as_json: bool
) -> Iterator[tuple[Gateway, Output]]:
    with Gateway(Target(address, key or None, tls)) as gateway:
        console = Console(highlight=False)
        if not console.is_terminal:  # pipes and files get whole lines and roomy tables
            console.soft_wrap = True
            console.width = max(console.width, PIPE_WIDTH)
        yield gateway, Output(console, as_json)


def _outcome(workflow: pb.Workflow) -> int:
    return (
        ExitCode.OK
        if workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
        else ExitCode.WORKFLOW_UNSUCCESSFUL
    )


def _follow(gateway: Gateway, out: Output, workflow: str) -> int:
    """Watch a workflow to its end, drawing its progress, then show the result."""
    progress = WatchProgress()
    try:
        if out.live:
            with Live(progress, console=out.console, refresh_per_second=8):
                for event in gateway.watch(workflow):
                    progress.update(event)
        else:
            for event in gateway.watch(workflow):
                progress.update(event)
                out.emit(to_json(event) if out.json else progress.line(event))
    except KeyboardInterrupt:
        name = workflow_name(workflow)
        raise CliError(
            f"stopped watching; {name} goes on (ponder watch {name}; ponder cancel {name})",
            ExitCode.INTERRUPTED,
        ) from None
    if progress.workflow is None or not progress.finished:
        raise CliError(
            "the watch ended before the workflow did; run `ponder watch` again to resume",
            ExitCode.UNREACHABLE,
        )
    if not out.json:
        out.console.print()
        out.console.print(result_view(progress.workflow, markdown=out.live))
    return _outcome(progress.workflow)


@app.command()
@_reporting
def run(
    *,
    kind: Annotated[Kind, typer.Argument(help="What to run.", show_default=False)],
    topic: Annotated[
        list[str], typer.Argument(help="The topic or question (1 to 2000 characters).")
    ],
    run_async: Annotated[
        bool, typer.Option("--async", help="Start it and return its id at once (CreateWorkflow).")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Start it and follow its progress live.")
    ] = False,
    workflow_id: Annotated[
        str, typer.Option("--id", help="Id for a started workflow (with --async or --watch).")
    ] = "",
    sources: Annotated[
        list[Source] | None,
        typer.Option("--source", "-s", help="A source to search (repeatable); default: all."),
    ] = None,
    max_sources: Annotated[int, typer.Option(min=0, max=20, help="0: the server's 5.")] = 0,
    max_iterations: Annotated[int, typer.Option(min=0, max=5, help="0: the server's 2.")] = 0,
    score_threshold: Annotated[
        float, typer.Option(min=0, max=10, help="Stop reflecting at this score; 0: 8.0.")
    ] = 0.0,
    cache: Annotated[Cache, typer.Option(help="Semantic cache policy.")] = Cache.USE,
    max_tokens: Annotated[
        int,
        typer.Option(
            min=0,
            max=10_000_000,
            help="Most model tokens the workflow may use; it stops with the best text so far "
            "before a call that could go over. 0: no limit.",
        ),
    ] = 0,
    max_cost: Annotated[
        float,
        typer.Option(
            "--max-cost",
            min=0,
            max=1000,
            help="Most US dollars of model calls (the reflection service's price table), "
            "enforced like --max-tokens. 0: no limit.",
        ),
    ] = 0.0,
    if_running: Annotated[
        Multitask,
        typer.Option(
            "--if-running",
            help="When an identical workflow is still running: join it (no second run), "
            "reject (fail, naming it) or enqueue (run after it; may hit the cache).",
        ),
    ] = Multitask.JOIN,
    notify_url: Annotated[
        str,
        typer.Option(
            "--notify-url",
            help="POST the workflow's JSON here when it ends (a signed completion webhook; "
            "the gateway must allow the destination). Needs --notify-secret.",
        ),
    ] = "",
    notify_secret: Annotated[
        str,
        typer.Option(
            "--notify-secret",
            help="Name of the gateway's webhook secret that signs it (never the secret).",
        ),
    ] = "",
    timeout: Timeout = 600.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> int:
    """Run a workflow: wait for its result (default), start it (--async), or follow it (--watch)."""
    if workflow_id and not (run_async or watch):
        raise CliError(
            "--id names a started workflow: add --async or --watch", ExitCode.BAD_REQUEST
        )
    options = RunOptions(
        kind=f"WORKFLOW_KIND_{kind.name}",
        topic=" ".join(topic),
        sources=[f"SOURCE_KIND_{source.name}" for source in sources or ()],
        max_sources=max_sources,
        max_iterations=max_iterations,
        score_threshold=score_threshold,
        cache_policy=f"CACHE_POLICY_{cache.name}",
        max_tokens=max_tokens,
        max_cost_usd=max_cost,
        multitask_strategy=f"MULTITASK_STRATEGY_{if_running.name}",
        notify_url=notify_url,
        notify_secret=notify_secret,
    )
    with _session(address, key, tls, as_json) as (gateway, out):
        if run_async or watch:
            started = gateway.create(options, workflow_id, timeout=min(timeout, 30.0))
            if watch:
                return _follow(gateway, out, started.name)
            if out.json:
                out.emit(to_json(started))
            else:
                out.console.print(headline(started))
                out.console.print(
                    Text(
                        f"follow it: ponder watch {started.id}"
                        f"   cancel: ponder cancel {started.id}",
                        style="dim",
                    )
                )
            return ExitCode.OK
        if out.live:
            with Live(
                Waiting(f"running a {kind.value} workflow"), console=out.console, transient=True
            ):
                reply = gateway.run(options, timeout)
        else:
            reply = gateway.run(options, timeout)
        out.workflow(reply.workflow, reply.replay_age_seconds)
        return _outcome(reply.workflow)


@app.command("watch")
@_reporting
def watch_command(
    *,
    workflow: WorkflowId,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> int:
    """Follow a workflow live to its end (steps, sources, iteration scores), then show it."""
    with _session(address, key, tls, as_json) as (gateway, out):
        return _follow(gateway, out, workflow)


@app.command()
@_reporting
def get(
    *,
    workflow: WorkflowId,
    timeout: Timeout = 30.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> int:
    """Show a workflow: its result, or its progress while it runs."""
    with _session(address, key, tls, as_json) as (gateway, out):
        out.workflow(gateway.get(workflow, timeout))
    return ExitCode.OK


@app.command("list")
@_reporting
def list_command(
    *,
    state: Annotated[State | None, typer.Option(help="Only workflows in this state.")] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only workflows of this kind.")] = None,
    filter_: Annotated[
        str,
        typer.Option(
            "--filter",
            help="A filter (combined with --state and --kind by AND), e.g. "
            + "; ".join(f"{example}" for example in FILTER_EXAMPLES)
            + ".",
        ),
    ] = "",
    limit: Annotated[int, typer.Option(min=1, max=100, help="Most workflows to show.")] = 20,
    page_token: Annotated[str, typer.Option(help="Where the previous page ended.")] = "",
    timeout: Timeout = 30.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> int:
    """List workflows, newest first."""
    clauses = [f"state = {state.name}"] if state is not None else []
    if kind is not None:
        clauses.append(f"kind = {kind.name}")
    if filter_:  # alone as typed, so the server's error positions are the user's own
        clauses.append(f"({filter_})" if clauses else filter_)
    with _session(address, key, tls, as_json) as (gateway, out):
        page = gateway.list(limit, page_token, " AND ".join(clauses), timeout)
        if out.json:
            out.emit(to_json(page))
            return ExitCode.OK
        if not page.workflows:
            out.console.print("no workflows")
        else:
            out.console.print(workflows_table(list(page.workflows)))
        if page.next_page_token:
            out.console.print(
                Text(f"more: ponder list --page-token {page.next_page_token}", style="dim")
            )
    return ExitCode.OK


@app.command()
@_reporting
def cancel(
    *,
    workflow: WorkflowId,
    timeout: Timeout = 30.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> int:
    """Cancel a pending or running workflow."""
    with _session(address, key, tls, as_json) as (gateway, out):
        cancelled = gateway.cancel(workflow, timeout)
        if out.json:
            out.emit(to_json(cancelled))
        else:
            out.console.print(headline(cancelled))
    return ExitCode.OK


@app.command()
@_reporting
def delete(
    *,
    workflow: WorkflowId,
    timeout: Timeout = 30.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> int:
    """Delete a finished workflow and its events (cancel a running one first)."""
    with _session(address, key, tls, as_json) as (gateway, out):
        gateway.delete(workflow, timeout)
        name = workflow_name(workflow)
        if out.json:
            out.emit(json.dumps({"deleted": name}))
        else:
            out.console.print(f"deleted {name}")
    return ExitCode.OK


@app.command()
@_reporting
def health(
    *,
    service: Annotated[
        str,
        typer.Option(
            help="A service name (ponder.workflow.v1.WorkflowService); default: the server."
        ),
    ] = "",
    timeout: Timeout = 5.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> int:
    """Check the gateway's health (grpc.health.v1): exit 0 when SERVING."""
    with _session(address, key, tls, as_json) as (gateway, out):
        status = gateway.health(service, timeout)
        if out.json:
            out.emit(json.dumps({"address": address, "service": service, "status": status}))
        else:
            style = "green" if status == "SERVING" else "red"
            out.console.print(Text.assemble(f"{address} {service or '(server)'} ", (status, style)))
    return ExitCode.OK if status == "SERVING" else ExitCode.WORKFLOW_UNSUCCESSFUL


def main() -> None:
    """The console script."""
    app(prog_name="ponder")
