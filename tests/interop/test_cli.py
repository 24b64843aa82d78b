"""The `ponder` CLI (clients/python) against the stack of real processes: every command, in a
pipe and in a pseudo-terminal, with its exit statuses for the failures users meet."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest

from ponder_cli.app import FILTER_EXAMPLES
from ponder_devstack import Stack
from ponder_devstack.fake_apis import FakeApi
from ponder_gateway.access import hash_key
from tests.conftest import InProcessStack
from tests.interop.cli import ANSI_ESCAPE, PONDER, ponder, ponder_async, ponder_in_pty
from tests.support.fakes import behaving
from tests.support.gateways import gateway as gateway_with
from tests.support.keys import KEY


@pytest.fixture(scope="module")
def gateway(process_stack: Stack) -> str:
    """The gateway's gRPC address."""
    return next(s.address for s in process_stack.services if s.name == "gateway")


def unique(topic: str) -> str:
    """A topic no earlier test asked (so neither the cache nor a replay answers it)."""
    return f"{topic} {uuid.uuid4().hex[:6]}"


def test_health(gateway):
    ran = ponder("health", "-a", gateway)
    assert ran.code == 0, ran
    assert ran.out.strip() == f"{gateway} (server) SERVING"
    ran = ponder(
        "health", "-a", gateway, "--json", "--service", "ponder.workflow.v1.WorkflowService"
    )
    assert ran.code == 0, ran
    assert json.loads(ran.out) == {
        "address": gateway,
        "service": "ponder.workflow.v1.WorkflowService",
        "status": "SERVING",
    }


def test_run_renders_the_cited_result_and_json_for_scripts(gateway):
    """A synchronous run: JSON for scripts, then the same request again as readable text,
    which the gateway answers as a replay; piped output has no escape sequences."""
    topic = unique("How do language agents use self-reflection?")
    ran = ponder("run", "reflection", topic, "-a", gateway, "--json")
    assert ran.code == 0, ran
    workflow = json.loads(ran.out)
    assert workflow["state"] == "WORKFLOW_STATE_SUCCEEDED"
    citations = workflow["result"]["citations"]
    assert citations
    ran = ponder("run", "reflection", topic, "-a", gateway)
    assert ran.code == 0, ran
    assert ANSI_ESCAPE not in ran.out
    lines = ran.out.splitlines()
    assert lines[0].startswith(f"{workflow['id']}  reflection  SUCCEEDED  in ")
    assert "replayed (" in lines[0]
    assert workflow["result"]["text"] in ran.out  # the Markdown source, whole, in a pipe
    assert "References" in lines
    for citation in citations:
        assert f"[{citation['index']}] {citation['title']}" in ran.out
        assert f"    {citation['url']}" in lines
    assert f"trace id: {workflow['traceId']}" in lines


def test_async_run_then_watch_get_and_list_in_a_pipe(gateway, fake_arxiv: FakeApi):
    """--async returns at once; `watch` prints one line per change (steps, sources found,
    iteration scores) while arXiv takes three seconds (time for the `watch` process to start on
    a loaded machine), then the result; get and list find it."""
    workflow_id = f"cli-{uuid.uuid4().hex[:8]}"
    topic = unique("dense passage retrieval for open-domain question answering")
    with behaving(fake_arxiv, latency=3.0):
        ran = ponder("run", "research", topic, "-s", "arxiv", "--async", "--id", workflow_id,
                     "-a", gateway, "--json")  # fmt: skip
        assert ran.code == 0, ran
        started = json.loads(ran.out)
        assert started["name"] == f"workflows/{workflow_id}"
        assert started["state"] in ("WORKFLOW_STATE_PENDING", "WORKFLOW_STATE_RUNNING")
        watched = ponder("watch", workflow_id, "-a", gateway)
    assert watched.code == 0, watched
    assert ANSI_ESCAPE not in watched.out
    lines = watched.out.splitlines()
    assert re.fullmatch(
        rf" +\d+\.\ds  workflows/{workflow_id} \(research\) (PENDING|RUNNING): .+", lines[0]
    )
    research = [line for line in lines if re.search(r"research +SUCCEEDED +\d+ candidate", line)]
    assert len(research) == 1
    found = int(research[0].split("SUCCEEDED")[1].split()[0])
    assert any(
        re.search(r"summarize +RUNNING +iteration 1: critique done, score", line) for line in lines
    )
    final = next(line for line in lines if re.search(r"\d\.\ds  SUCCEEDED · ", line))
    assert f"{found} sources found" in final
    assert re.search(r"iteration 1, scores \d+\.\d", final)
    stamps = [float(line.split("s ")[0]) for line in lines[: lines.index(final) + 1]]
    assert stamps == sorted(stamps)
    assert stamps[-1] >= 1.0  # arXiv's second is in the elapsed time
    assert f"{workflow_id}  research  SUCCEEDED  in " in watched.out
    assert "References" in lines

    got = ponder("get", workflow_id, "-a", gateway, "--json")
    assert got.code == 0, got
    assert json.loads(got.out)["state"] == "WORKFLOW_STATE_SUCCEEDED"
    listed = ponder("list", "--kind", "research", "--limit", "100", "-a", gateway, "--json")
    assert listed.code == 0, listed
    assert f"workflows/{workflow_id}" in [w["name"] for w in json.loads(listed.out)["workflows"]]
    table = ponder("list", "--state", "succeeded", "--limit", "100", "-a", gateway)
    assert table.code == 0, table
    assert table.out.splitlines()[0].split() == [
        "ID",
        "KIND",
        "STATE",
        "CREATED",
        "(UTC)",
        "TIME",
        "TOPIC",
    ]
    row = next(line for line in table.out.splitlines() if line.startswith(workflow_id))
    assert row.split()[1:3] == ["research", "SUCCEEDED"]


def test_watch_draws_live_progress_in_a_terminal(gateway, fake_arxiv: FakeApi):
    """In a pseudo-terminal `run --watch` redraws a panel (steps, sources found, iteration
    scores, elapsed time) while the workflow runs, then renders the result as Markdown."""
    with behaving(fake_arxiv, latency=1.5):
        code, screen = ponder_in_pty(
            "run", "research-reflection", unique("chain-of-thought prompting"), "-s", "arxiv",
            "--max-iterations", "2", "--score-threshold", "10", "--watch", "-a", gateway,
        )  # fmt: skip
    assert code == 0, screen
    assert ANSI_ESCAPE in screen  # colors and cursor movement: a live display
    frames = screen.count("\x1b[2K")  # rich's Live clears its lines before each redraw
    assert frames >= 5, screen
    assert "╭─" in screen
    assert "waiting for the first event" in screen or "RUNNING" in screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert re.search(r"\d+ sources found · \d+ kept · iteration 2, scores \d+\.\d → \d+\.\d", plain)
    for step in ("research", "rank", "reflect"):
        assert re.search(rf"✓ {step}\b", plain), plain
    ticking = {float(m) for m in re.findall(r"RUNNING  (\d+\.\d)s", plain)}
    assert len(ticking) >= 3  # the elapsed time moves while arXiv keeps it waiting
    assert "References" in plain
    assert "\x1b[1;4mReferences" in screen  # styled: rendered for a terminal


def test_cancel_and_the_exit_statuses_users_meet(gateway, fake_arxiv: FakeApi):
    """cancel works on a running workflow and then fails as FAILED_PRECONDITION; delete then
    removes it (a second delete is not found); unknown
    workflows, bad input and an unreachable gateway each get their own status and message."""
    workflow_id = f"cli-{uuid.uuid4().hex[:8]}"
    with behaving(fake_arxiv, latency=3.0):
        ran = ponder("run", "research", unique("speculative decoding"), "-s", "arxiv",
                     "--async", "--id", workflow_id, "-a", gateway)  # fmt: skip
        assert ran.code == 0, ran
        assert f"follow it: ponder watch {workflow_id}" in ran.out
        cancelled = ponder("cancel", workflow_id, "-a", gateway)
        assert cancelled.code == 0, cancelled
        assert cancelled.out.startswith(f"{workflow_id}  research  CANCELLED")
        again = ponder("cancel", workflow_id, "-a", gateway)
    assert again.code == 2, again
    assert again.err.startswith("ponder: FAILED_PRECONDITION: ")
    watched = ponder("watch", workflow_id, "-a", gateway)
    assert watched.code == 1, watched  # the workflow did not succeed
    assert "CANCELLED" in watched.out
    deleted = ponder("delete", workflow_id, "-a", gateway)
    assert deleted.code == 0, deleted
    assert deleted.out.strip() == f"deleted workflows/{workflow_id}"
    gone = ponder("delete", workflow_id, "-a", gateway)
    assert gone.code == 3, gone  # not found

    missing = ponder("get", "no-such-workflow", "-a", gateway)
    assert missing.code == 3, missing
    assert missing.err.startswith("ponder: NOT_FOUND: ")

    empty = ponder("run", "research", "   ", "-a", gateway)
    assert empty.code == 2, empty
    assert "INVALID_ARGUMENT" in empty.err
    assert "\n  workflow.topic: " in empty.err  # the field, from google.rpc.BadRequest

    usage = ponder("run", "poetry", "a topic", "-a", gateway)
    assert usage.code == 2, usage
    assert "'poetry' is not one of" in usage.err

    unreachable = ponder("get", "anything", "-a", "127.0.0.1:1", "--timeout", "5")
    assert unreachable.code == 6, unreachable
    assert unreachable.err.startswith("ponder: cannot reach the gateway at 127.0.0.1:1: ")
    assert not unreachable.out


async def test_auth_failures_and_rate_limits_have_their_own_statuses(
    stack: InProcessStack, tmp_path
):
    """A gateway that requires keys and allows two calls: no key or a wrong key exit 4 with a
    hint; the key from --key or PONDER_API_KEY passes; the third call exits 5 with the wait."""
    server = await gateway_with(
        stack, tmp_path, allow_anonymous=False, api_key_hashes=[hash_key(KEY)],
        rate_limit_per_second=0.01, rate_limit_burst=2,
    )  # fmt: skip
    address = f"127.0.0.1:{server.port}"
    try:
        for key in ((), ("--key", "pk-wrong")):
            refused = await ponder_async("get", "nothing-here", "-a", address, *key)
            assert refused.code == 4, refused
            assert refused.err.startswith("ponder: authentication failed (UNAUTHENTICATED): ")
            assert "pass --key or set PONDER_API_KEY" in refused.err
        from_env = await ponder_async(
            "get", "nothing-here", "-a", address, env={"PONDER_API_KEY": KEY}
        )
        assert from_env.code == 3, from_env  # authenticated: the workflow just does not exist
        from_flag = await ponder_async("get", "nothing-here", "-a", address, "--key", KEY)
        assert from_flag.code == 3, from_flag
        limited = await ponder_async("get", "nothing-here", "-a", address, "--key", KEY)
        assert limited.code == 5, limited
        wait = re.match(r"ponder: rate limited: retry in (\d+\.\d)s \(", limited.err)
        assert wait is not None, limited.err
        assert float(wait.group(1)) > 1
        assert KEY not in limited.err + limited.out
    finally:
        await server.stop(0)


def test_a_reader_that_goes_away_ends_the_watch_quietly(gateway, fake_arxiv: FakeApi):
    """`ponder ... --watch | head -1`: once the reader has gone, the next line ends ponder with
    141 (what a shell reports for SIGPIPE) and nothing on stderr, not a traceback or 1."""
    with behaving(fake_arxiv, latency=1.0):
        process = subprocess.Popen(
            [str(PONDER), "run", "research", unique("dense retrieval"), "-s", "arxiv", "--watch",
             "-a", gateway],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        code = process.wait(timeout=60)
        errors = process.stderr.read()
        process.stderr.close()
    assert b"RUNNING" in first or b"PENDING" in first
    assert code == 141
    assert errors == b""


def test_list_filters_combine_with_state_and_kind_and_help_examples_run(gateway):
    """--filter, --state and --kind combine by AND (the filter keeps its own precedence inside
    parentheses); each example `ponder list --help` shows runs; a bad filter is exit 2 naming
    the position."""
    topic = unique("self-consistency filters for chain-of-thought reasoning")
    ran = ponder("run", "reflection", topic, "-a", gateway, "--json")
    assert ran.code == 0, ran
    name = json.loads(ran.out)["name"]

    def names(*args: str) -> list[str]:
        listed = ponder("list", "--limit", "100", "-a", gateway, "--json", *args)
        assert listed.code == 0, listed
        return [w["name"] for w in json.loads(listed.out).get("workflows", [])]

    words = topic.split()[-1]
    assert name in names("--filter", f'topic:"{words}"')
    assert name in names("--filter", f'topic:"{words}" OR state = FAILED', "--state", "succeeded")
    assert name in names("--filter", f"topic:{words}", "--kind", "reflection")
    assert name not in names("--filter", f"topic:{words}", "--kind", "research")
    assert name not in names("--filter", f"topic:{words}", "--state", "failed")
    assert name not in names("--filter", f"NOT topic:{words}")
    assert name in names("--filter", "state != FAILED AND kind != research")

    shown = ponder("list", "--help", env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert shown.code == 0, shown
    flat = " ".join(shown.out.split())
    for example in FILTER_EXAMPLES:
        assert example in flat
        assert ponder("list", "--filter", example, "-a", gateway).code == 0, example

    bad = ponder("list", "--filter", "state = RUNNING AND", "-a", gateway)
    assert bad.code == 2, bad
    assert "at position 20" in bad.err + bad.out
