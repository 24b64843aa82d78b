"""Research over one's own documents, across real processes (ponder_devstack's Stack: research,
reflection and the gateway, with the session's embedding service): a Markdown handbook, an HTML
page and a PDF in PONDER_RESEARCH_LIBRARY_DIRS, each answering a question only deep inside it;
the research workflow finds and cites the passage that answers it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_apis import FakeApi
from ponder_devstack.stack import Stack, StackPorts
from tests.conftest import InProcessStack, research_env
from tests.library_files import html_page, pdf_bytes


HANDBOOK = Path(__file__).parents[1] / "data" / "library" / "acme_handbook.md"

GREENHOUSE = [
    (
        "Light",
        "The greenhouse faces south and gets full sun from late morning. Shade cloth is rolled "
        "over the roof from May to August, when leaves of the ferns start to scorch otherwise. "
        "Grow lamps above the seedling benches run for fourteen hours a day in winter and are "
        "switched off entirely from April.\n\nVisitors are asked not to move the lamps, since "
        "the height of each lamp is set for the plants below it and noted in the bench log.",
    ),
    (
        "Soil and potting",
        "Every pot is filled with the house mix: two parts bark, one part coir and one part "
        "perlite, with a handful of charcoal per bucket. Cacti get extra grit. Repotting happens "
        "in March, before the growth season, and roots that circle the pot are teased apart or "
        "trimmed.\n\nOld soil goes to the compost heap behind the shed, never back into pots, "
        "so that fungus gnats and root rot do not travel from one plant to the next.",
    ),
    (
        "Watering",
        "Most plants are watered when the top two centimetres of soil are dry, in the morning so "
        "that leaves dry before night. Succulents are watered every three weeks in summer and "
        "hardly at all in winter.\n\nOrchids in the east wing are watered with rainwater from "
        "the copper cistern every ninth day, never with tap water, because the lime in the "
        "town's water burns their roots.",
    ),
]

FERRY_PAGES = [
    "Harbor Ferry Operations Report 2025. This report covers the routes, the fleet and the "
    "crews of the harbor ferry service in its third year of operation. Ridership grew by a "
    "fifth, mostly on the commuter routes between the old town and the business district.",
    "Fleet. The service runs six vessels. Four diesel-electric ferries serve the commuter "
    "routes every twenty minutes from six in the morning to eleven at night. A smaller boat "
    "carries bicycles and freight to the islands twice a day. Hulls are inspected every winter "
    "in the dry dock at the shipyard, when each vessel is out of service for two weeks.\n"
    "Crews. Each ferry has a captain, a mate and two deckhands. New deckhands spend their first "
    "month on the bicycle boat, where the pace is slower, and take their sea survival course "
    "before their first winter. Captains rotate between routes every quarter so that every "
    "captain knows every pier, and the mates keep the logbooks that record fuel, passengers and "
    "delays for each crossing. Ticket inspectors board at random on the commuter routes and "
    "check about one passenger in ten; the fare is the same on every route and children under "
    "twelve travel free when accompanied by an adult.",
    "Night service. The night ferry to Kessel Island is powered by a hydrogen fuel cell that is "
    "refilled at the Pier 4 electrolyser every Sunday. It leaves the main pier at midnight and "
    "at two in the morning, and it carries up to eighty passengers. Crews on the night service "
    "work four nights on and four nights off.",
]

CASES = [
    pytest.param(
        "How does Acme schedule nightly batch jobs with quantum annealing?",
        "library:acme_handbook",
        "quantum annealing",
        id="markdown",
    ),
    pytest.param(
        "How often are the orchids in the east wing watered, and with what water?",
        "library:greenhouse",
        "copper cistern every ninth day",
        id="html",
    ),
    pytest.param(
        "What powers the night ferry to Kessel Island?",
        "library:ferry_report",
        "hydrogen fuel cell",
        id="pdf",
    ),
]


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library folder with one Markdown, one HTML and one PDF document, and a broken PDF."""
    folder = tmp_path_factory.mktemp("library")
    (folder / HANDBOOK.name).write_bytes(HANDBOOK.read_bytes())
    (folder / "greenhouse.html").write_text(
        html_page("Lindqvist Greenhouse Care Guide", GREENHOUSE)
    )
    (folder / "ferry_report.pdf").write_bytes(
        pdf_bytes(FERRY_PAGES, title="Harbor Ferry Operations Report 2025")
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    return folder


@pytest_asyncio.fixture(scope="module")
async def library_stack(
    library_dir: Path,
    stack: InProcessStack,
    fake_arxiv: FakeApi,
    fake_tavily: FakeApi,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """Research, reflection and the gateway as processes, with only `library_dir` as the
    library, using the session's (in-process) embedding service."""
    log_dir = tmp_path_factory.mktemp("library-stack")
    processes = Stack(
        ports=StackPorts.free(),
        log_dir=log_dir,
        extra_env={
            "PONDER_LOG_LEVEL": "INFO",
            "PONDER_GATEWAY_STORE_PATH": str(log_dir / "workflows.sqlite3"),
            **research_env(fake_arxiv, fake_tavily, log_dir),
            "PONDER_RESEARCH_LIBRARY_DIRS": json.dumps([str(library_dir)]),
            "PONDER_RESEARCH_INCLUDE_SAMPLE_LIBRARY": "false",
            "PONDER_EMBEDDING_ADDR": stack.address("embedding"),
        },
    )
    processes.services = [s for s in processes.services if s.name != "embedding"]
    processes.start()
    try:
        await processes.wait_ready(timeout=120)
        await processes.wait_for_log("research", "library indexed", timeout=120)
        yield processes
    finally:
        codes = processes.stop()
        assert all(code == 0 for code in codes.values()), codes


async def test_unreadable_file_is_skipped_and_named(library_stack: Stack) -> None:
    """The broken PDF is logged by name and skipped; the other documents load."""
    log = library_stack.service("research").log_path.read_text()
    (line,) = [json.loads(x) for x in log.splitlines() if "library file skipped" in x]
    assert line["file"].endswith("broken.pdf")
    assert "not a readable PDF" in line["reason"]
    (loaded,) = [json.loads(x) for x in log.splitlines() if '"library loaded"' in x]
    assert (loaded["documents"], loaded["skipped_files"]) == (3, 1)


@pytest.mark.parametrize(("question", "document_id", "answer"), CASES)
async def test_research_cites_the_deep_passage(
    library_stack: Stack, library_dir: Path, question: str, document_id: str, answer: str
) -> None:
    """The research workflow over the library cites the passage holding the answer: the
    citation names the document, the passage's heading or page and its offsets, and its
    `[n]` marker is in the text."""
    gateway = library_stack.service("gateway").address
    async with grpc.aio.insecure_channel(gateway) as channel:
        reply = await workflow_grpc.WorkflowServiceStub(channel).RunResearchWorkflow(
            workflow_pb2.RunResearchWorkflowRequest(
                topic=question,
                parameters=workflow_pb2.WorkflowParameters(
                    sources=[document_pb2.SOURCE_KIND_LIBRARY]
                ),
            ),
            timeout=120,
        )
    result = reply.workflow.result
    assert reply.workflow.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
    assert result.sources[0].id == document_id
    assert answer in " ".join(result.sources[0].passages[0].text.split())
    cited = [
        c
        for c in result.citations
        if c.document_id == document_id and answer in " ".join(c.passage.text.split())
    ]
    assert cited, [(c.document_id, c.passage.text[:80]) for c in result.citations]
    citation = cited[0]
    assert citation.index in {int(n) for n in re.findall(r"\[(\d+)\]", result.text)}
    passage = citation.passage
    assert passage.end_offset > passage.start_offset > 0
    if document_id == "library:acme_handbook":
        assert passage.heading == "Acme Operations Handbook > Scheduling"
        text = HANDBOOK.read_text(encoding="utf-8")
        assert text[passage.start_offset : passage.end_offset] == passage.text
    elif document_id == "library:greenhouse":
        assert passage.heading == "Lindqvist Greenhouse Care Guide > Watering"
        assert "Visitors" not in passage.text  # another section
        assert "Pricing" not in passage.text  # navigation
    else:
        assert (passage.page, passage.heading) == (3, "")
