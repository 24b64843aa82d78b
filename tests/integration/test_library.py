"""Uploaded libraries end to end over real sockets: research, embedding and reflection run as
real processes (the shared process stack), a gateway with API keys of two tenants in front of
them. A PDF, a Markdown handbook and an HTML page go up over gRPC, REST raw body and REST
multipart; each is INDEXED, and a research workflow finds and cites a passage from deep inside
it; uploads dedupe by hash; a delete removes the passages and changes the library version (the
cached answer is not served again); a corrupt PDF FAILS with its reason and nothing else is
affected; tenants never see each other's documents; size limits answer INVALID_ARGUMENT / 413;
the `ponder library` CLI and the Node client upload with progress per file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.library.v1 import library_service_pb2 as pb
from ponder.library.v1 import library_service_pb2_grpc as library_grpc
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack import Stack
from ponder_gateway.principals import DEFAULT_SCOPES
from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_runtime import ServiceServer, load_settings
from tests.conftest import start_service
from tests.interop.cli import ponder_async
from tests.library_files import html_page, markdown, pdf_bytes
from tests.support.gateways import UnwaitingGateway
from tests.support.keys import bearer, key_line, keys_file


ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB = "pk-alice-library-0123456789", "pk-bob-library-0123456789"
UPLOAD_LIMIT = 512 * 1024  # the test gateway's REST upload limit (413 beyond)
RESEARCH_LIMIT = 6 * 1024 * 1024  # research's default per-file limit (INVALID_ARGUMENT beyond)


def _filler(topic: str, paragraphs: int) -> list[str]:
    """Ordinary paragraphs about `topic`, enough to push a fact far past the first 256 tokens."""
    sentences = (
        f"The {topic} team reviews its routines every quarter and writes down what changed.",
        "New members read the guide in their first week and ask their mentor about the rest.",
        "Budgets are approved in January, and travel needs a manager's written agreement.",
        "Meetings are kept short, and decisions are recorded in the shared notes folder.",
        "Every change to a routine is announced a week ahead in the team's channel.",
    )
    return [" ".join(sentences[(n + i) % 5] for i in range(5)) for n in range(paragraphs)]


# Each document hides one unusual fact deep inside (past its first 256 tokens).
PDF_FACT = (
    "The Brightwater lighthouse keepers record tide heights in cobalt ink every fourth night."
)
HTML_FACT = "The Orchard cooperative ripens its winter pears inside sealed argon chambers."
FERNHILL_HOURS = (
    "The Fernhill bakery opens at six and sells its rye loaves until they run out; the "
    "bakery closes on Mondays."
)
MD_QUESTION = "How does Acme schedule nightly batch jobs with quantum annealing?"
PDF_QUESTION = "How do the Brightwater lighthouse keepers record tide heights?"
HTML_QUESTION = "How does the Orchard cooperative ripen its winter pears?"


def pdf_document() -> bytes:
    """A four-page PDF report whose fact is on page 3."""
    pages = [
        "\n".join(_filler("harbour", 4)),
        "\n".join(_filler("lighthouse", 4)),
        "\n".join([*_filler("coastal", 2), PDF_FACT, *_filler("coastal", 1)]),
        "\n".join(_filler("weather", 3)),
    ]
    return pdf_bytes(pages, title="Brightwater coastal report")


def html_document() -> bytes:
    """An HTML page (navigation, header, footer) whose fact is in its fourth section."""
    sections = [
        ("About the cooperative", "\n\n".join(_filler("orchard", 3))),
        ("Membership", "\n\n".join(_filler("membership", 3))),
        ("Harvest", "\n\n".join(_filler("harvest", 3))),
        ("Storage", "\n\n".join([*_filler("storage", 1), HTML_FACT])),
    ]
    return html_page("Orchard cooperative handbook", sections).encode()


def markdown_document() -> bytes:
    """The Acme handbook (its scheduling section is far from the start)."""
    return (ROOT / "tests" / "data" / "library" / "acme_handbook.md").read_bytes()


def corrupt_pdf() -> bytes:
    """A file that says it is a PDF and is not one."""
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\ntruncated garbage \x00\xff\n"


@pytest.fixture(scope="module")
async def keyed_gateway(
    process_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceServer]:
    """A gateway (alice: tenant a, bob: tenant b; no anonymous calls) in front of the process
    stack's research, reflection and embedding, with a small REST upload limit and no
    version or replay memory (each call sees the library as it is)."""
    server = await start_keyed_gateway(process_stack, tmp_path_factory.mktemp("library-gateway"))
    yield server
    await server.stop(0)


async def start_keyed_gateway(stack: Stack, tmp: Path, **overrides: Any) -> ServiceServer:
    """The keyed gateway's settings (see `keyed_gateway`), with `overrides`, started."""
    keys = keys_file(
        tmp / "keys",
        key_line(ALICE, key_id="alice", tenant="a", scopes=DEFAULT_SCOPES),
        key_line(BOB, key_id="bob", tenant="b", scopes=DEFAULT_SCOPES),
    )
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "http_port": 0,
        "research_addr": stack.service("research").address,
        "embedding_addr": stack.service("embedding").address,
        "reflection_addr": stack.service("reflection").address,
        "internal_token": stack.environment()["PONDER_INTERNAL_TOKEN"],
        "store_path": tmp / "workflows.sqlite3",
        "allow_anonymous": False,
        "api_keys_file": keys,
        "http_max_upload_bytes": UPLOAD_LIMIT,
        "cache_library_version_seconds": 0.0,
        "replay_seconds": 0.0,
        "rate_limit_burst": 1000,
        "tenant_rate_limit_burst": 1000,
    }
    settings = load_settings(GatewaySettings, **(values | overrides))
    return await start_service(settings, UnwaitingGateway, InMemorySpanExporter())


@pytest.fixture
async def channel(keyed_gateway: ServiceServer) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the keyed gateway."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{keyed_gateway.port}") as opened:
        yield opened


def rest_url(server: ServiceServer) -> str:
    """The keyed gateway's REST facade."""
    module = server.service
    assert isinstance(module, GatewayModule)
    assert module.http is not None
    return f"http://127.0.0.1:{module.http.port}"


async def upload_grpc(
    channel: grpc.aio.Channel, key: str, library: str, data: bytes, media: str, *, name: str
) -> pb.Document:
    """CreateDocument over gRPC."""
    reply = await library_grpc.LibraryServiceStub(channel).CreateDocument(
        pb.CreateDocumentRequest(
            parent=f"libraries/{library}",
            file=httpbody_pb2.HttpBody(content_type=media, data=data),
            display_name=name,
        ),
        metadata=bearer(key),
        timeout=30,
    )
    document: pb.Document = reply.document
    return document


async def indexed(channel: grpc.aio.Channel, key: str, name: str) -> pb.Document:
    """WatchDocument until the document is INDEXED or FAILED; the last state."""
    last: pb.Document | None = None
    stream = library_grpc.LibraryServiceStub(channel).WatchDocument(
        pb.WatchDocumentRequest(name=name), metadata=bearer(key), timeout=120
    )
    async for event in stream:
        last = event.document
    assert last is not None
    assert last.state != pb.DOCUMENT_STATE_PENDING, last
    return last


async def research(
    channel: grpc.aio.Channel, key: str, topic: str, cache: workflow_pb2.CachePolicy
) -> workflow_pb2.Workflow:
    """A research workflow over the library only."""
    reply = await workflow_grpc.WorkflowServiceStub(channel).RunWorkflow(
        workflow_pb2.RunWorkflowRequest(
            workflow=workflow_pb2.Workflow(
                kind=workflow_pb2.WORKFLOW_KIND_RESEARCH,
                topic=topic,
                parameters=workflow_pb2.WorkflowParameters(
                    sources=[document_pb2.SOURCE_KIND_LIBRARY], cache_policy=cache
                ),
            )
        ),
        metadata=bearer(key),
        timeout=120,
    )
    workflow: workflow_pb2.Workflow = reply.workflow
    assert workflow.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, workflow.error
    return workflow


def cited(workflow: workflow_pb2.Workflow, document: str) -> list[document_pb2.Citation]:
    """The workflow's citations of `document` (by its resource name)."""
    return [c for c in workflow.result.citations if c.document_id == document]


async def library_version(stack: Stack, tenant: str) -> str:
    """What research says tenant's library searches are at (GetLibrary, internal call)."""
    async with grpc.aio.insecure_channel(stack.service("research").address) as direct:
        reply = await research_grpc.ResearchServiceStub(direct).GetLibrary(
            research_pb2.GetLibraryRequest(tenant=tenant),
            metadata=stack.internal_metadata(),
            timeout=10,
        )
    version: str = reply.version
    return version


async def test_pdf_markdown_and_html_uploads_are_found_and_cited_deep_inside(
    keyed_gateway: ServiceServer, channel: grpc.aio.Channel, process_stack: Stack
) -> None:
    """A PDF over gRPC, a Markdown file as a raw REST body and an HTML page as a multipart
    form: each goes PENDING then INDEXED with its passages, and a research workflow over the
    library finds each one's deep fact and cites the passage that holds it (the PDF's by its
    page, the others by their section heading, with offsets)."""
    pdf = await upload_grpc(
        channel, ALICE, "reports", pdf_document(), "application/pdf", name="brightwater.pdf"
    )
    assert pdf.state == pb.DOCUMENT_STATE_PENDING
    assert pdf.sha256 == hashlib.sha256(pdf_document()).hexdigest()
    async with httpx.AsyncClient(base_url=rest_url(keyed_gateway), timeout=30) as http:
        raw = await http.post(
            "/v1/libraries/reports/documents",
            params={"displayName": "acme_handbook.md"},
            content=markdown_document(),
            headers={"content-type": "text/markdown; charset=utf-8", **dict(bearer(ALICE))},
        )
        assert raw.status_code == 200, raw.text
        form = await http.post(
            "/v1/libraries/reports/documents",
            files={"file": ("orchard.html", html_document(), "text/html")},
            data={"display_name": "orchard.html"},
            headers=dict(bearer(ALICE)),
        )
        assert form.status_code == 200, form.text
    md_name, html_name = raw.json()["document"]["name"], form.json()["document"]["name"]
    assert form.json()["document"]["displayName"] == "orchard.html"
    assert form.json()["document"]["mediaType"] == "text/html"
    done = {name: await indexed(channel, ALICE, name) for name in (pdf.name, md_name, html_name)}
    for document in done.values():
        assert document.state == pb.DOCUMENT_STATE_INDEXED, document.failure_reason
        assert document.passage_count >= 3, document
    expectations = [
        (pdf.name, PDF_QUESTION, "cobalt ink", "page"),
        (md_name, MD_QUESTION, "quantum annealing", "Scheduling"),
        (html_name, HTML_QUESTION, "argon chambers", "Storage"),
    ]
    for name, question, fact, where in expectations:
        workflow = await research(channel, ALICE, question, workflow_pb2.CACHE_POLICY_BYPASS)
        citations = cited(workflow, name)
        assert citations, (name, [c.document_id for c in workflow.result.citations])
        passages = [c.passage for c in citations if c.HasField("passage")]
        assert any(fact in p.text for p in passages), (name, passages)
        found = next(p for p in passages if fact in p.text)
        assert found.start_offset > 1000  # deep inside: well past the first 256 tokens
        assert found.end_offset > found.start_offset
        if where == "page":
            assert found.page == 3
        else:
            assert where in found.heading


async def test_identical_bytes_return_the_existing_document(channel: grpc.aio.Channel) -> None:
    """The same bytes uploaded again (another name, another media type parameter) come back
    as the document already stored; the library lists it once."""
    data = markdown("Dedupe notes", [("Only", "A short note uploaded twice.")]).encode()
    first = await upload_grpc(channel, ALICE, "dedupe", data, "text/markdown", name="one.md")
    again = await upload_grpc(channel, ALICE, "dedupe", data, "text/markdown; x=1", name="two.md")
    assert again.name == first.name
    assert again.display_name == "one.md"
    listed = await library_grpc.LibraryServiceStub(channel).ListDocuments(
        pb.ListDocumentsRequest(parent="libraries/dedupe"), metadata=bearer(ALICE), timeout=10
    )
    assert [d.name for d in listed.documents] == [first.name]


async def test_delete_removes_passages_and_invalidates_cached_answers(
    channel: grpc.aio.Channel, process_stack: Stack
) -> None:
    """A cached answer citing a document is served until the document is deleted; the
    delete changes the tenant's library version (as GetLibrary reports it), Get is NOT_FOUND
    after it, and the next workflow is no cache hit and cites it no more."""
    fact = "The Fernhill bakery proofs its rye loaves overnight in a cellar lined with cedar."
    body = markdown(
        "Fernhill bakery", [(f"Part {n}", p) for n, p in enumerate(_filler("bakery", 6))]
    )
    body += f"\n## Proofing\n\n{fact}\n"
    doc = await upload_grpc(
        channel, ALICE, "bakery", body.encode(), "text/markdown", name="bake.md"
    )
    hours = markdown("Fernhill bakery hours", [("Opening", FERNHILL_HOURS)]).encode()
    other = await upload_grpc(channel, ALICE, "bakery", hours, "text/markdown", name="hours.md")
    assert (await indexed(channel, ALICE, doc.name)).state == pb.DOCUMENT_STATE_INDEXED
    assert (await indexed(channel, ALICE, other.name)).state == pb.DOCUMENT_STATE_INDEXED
    question = "How does the Fernhill bakery proof its rye loaves?"
    first = await research(channel, ALICE, question, workflow_pb2.CACHE_POLICY_USE)
    assert cited(first, doc.name)
    again = await research(channel, ALICE, question, workflow_pb2.CACHE_POLICY_USE)
    assert again.cache.hit
    assert cited(again, doc.name)
    before = await library_version(process_stack, "a")
    stub = library_grpc.LibraryServiceStub(channel)
    deleted = await stub.DeleteDocument(
        pb.DeleteDocumentRequest(name=doc.name), metadata=bearer(ALICE), timeout=10
    )
    after = await library_version(process_stack, "a")
    assert before != after == deleted.library_version
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=bearer(ALICE))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    fresh = await research(channel, ALICE, question, workflow_pb2.CACHE_POLICY_USE)
    assert not fresh.cache.hit
    assert not cited(fresh, doc.name)
    assert cited(fresh, other.name)  # the bakery's other document is still there


async def test_a_deleted_document_ends_the_replays_of_answers_that_cite_it(
    process_stack: Stack, tmp_path: Path
) -> None:
    """With replays on, an exact repeat of a library question is replayed (the same workflow)
    until a document of the library is deleted; the next repeat runs again without it."""
    server = await start_keyed_gateway(process_stack, tmp_path, replay_seconds=300.0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as replaying:
            fact = "The Quarry Lane press binds its atlases with waxed linen thread."
            body = markdown("Quarry Lane press", [("Binding", fact)]).encode()
            doc = await upload_grpc(
                replaying, ALICE, "press", body, "text/markdown", name="press.md"
            )
            hours = markdown("Quarry Lane press hours", [("Opening", FERNHILL_HOURS)])
            other = await upload_grpc(
                replaying, ALICE, "press", hours.encode(), "text/markdown", name="hours.md"
            )
            for uploaded in (doc, other):
                state = (await indexed(replaying, ALICE, uploaded.name)).state
                assert state == pb.DOCUMENT_STATE_INDEXED
            question = "How does the Quarry Lane press bind its atlases?"
            use = workflow_pb2.CACHE_POLICY_USE
            first = await research(replaying, ALICE, question, use)
            assert cited(first, doc.name)
            replayed = await research(replaying, ALICE, question, use)
            assert replayed.name == first.name  # the kept answer, not a new workflow
            await library_grpc.LibraryServiceStub(replaying).DeleteDocument(
                pb.DeleteDocumentRequest(name=doc.name), metadata=bearer(ALICE), timeout=10
            )
            fresh = await research(replaying, ALICE, question, use)
            assert fresh.name != first.name
            assert not fresh.cache.hit
            assert not cited(fresh, doc.name)
    finally:
        await server.stop(0)


async def test_a_corrupt_pdf_fails_with_its_reason_and_affects_nothing_else(
    channel: grpc.aio.Channel,
) -> None:
    """A broken PDF is FAILED with a reason naming it; a good file uploaded with it is
    INDEXED; the library lists both with their states."""
    bad = await upload_grpc(
        channel, ALICE, "mixed", corrupt_pdf(), "application/pdf", name="bad.pdf"
    )
    good_bytes = markdown("Good notes", [("Body", "A readable note beside a broken one.")])
    good = await upload_grpc(
        channel, ALICE, "mixed", good_bytes.encode(), "text/markdown", name="good.md"
    )
    failed = await indexed(channel, ALICE, bad.name)
    assert failed.state == pb.DOCUMENT_STATE_FAILED
    assert failed.failure_reason.startswith("bad.pdf:"), failed.failure_reason
    assert (await indexed(channel, ALICE, good.name)).state == pb.DOCUMENT_STATE_INDEXED
    listed = await library_grpc.LibraryServiceStub(channel).ListDocuments(
        pb.ListDocumentsRequest(parent="libraries/mixed", page_size=1),
        metadata=bearer(ALICE),
        timeout=10,
    )
    assert [d.name for d in listed.documents] == [bad.name]
    assert listed.next_page_token
    rest = await library_grpc.LibraryServiceStub(channel).ListDocuments(
        pb.ListDocumentsRequest(parent="libraries/mixed", page_token=listed.next_page_token),
        metadata=bearer(ALICE),
        timeout=10,
    )
    assert [d.name for d in rest.documents] == [good.name]
    assert not rest.next_page_token


async def test_a_tenant_never_sees_another_tenants_library(
    keyed_gateway: ServiceServer, channel: grpc.aio.Channel
) -> None:
    """bob gets NOT_FOUND for alice's document (Get, Watch, Delete; 404 over REST), an empty
    list for her library, and his research finds his own library of the same id, never her
    passages."""
    fact = "The Kestrel choir tunes its bells with a tuning fork forged from meteorite iron."
    body = markdown("Kestrel choir", [(f"Part {n}", p) for n, p in enumerate(_filler("choir", 4))])
    body += f"\n## Bells\n\n{fact}\n"
    doc = await upload_grpc(channel, ALICE, "private", body.encode(), "text/markdown", name="k.md")
    assert (await indexed(channel, ALICE, doc.name)).state == pb.DOCUMENT_STATE_INDEXED
    stub = library_grpc.LibraryServiceStub(channel)
    for call in (
        stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=bearer(BOB)),
        stub.DeleteDocument(pb.DeleteDocumentRequest(name=doc.name), metadata=bearer(BOB)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as watched:
        async for _ in stub.WatchDocument(
            pb.WatchDocumentRequest(name=doc.name), metadata=bearer(BOB)
        ):
            pass
    assert watched.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListDocuments(
        pb.ListDocumentsRequest(parent="libraries/private"), metadata=bearer(BOB)
    )
    assert not listed.documents
    async with httpx.AsyncClient(base_url=rest_url(keyed_gateway), timeout=30) as http:
        got = await http.get(f"/v1/{doc.name}", headers=dict(bearer(BOB)))
    assert got.status_code == 404
    own = markdown("Kestrel choir visits", [("Guests", "The Kestrel choir welcomes visitors.")])
    bobs = await upload_grpc(channel, BOB, "private", own.encode(), "text/markdown", name="v.md")
    assert bobs.name != doc.name  # the same library id, another tenant: another library
    assert (await indexed(channel, BOB, bobs.name)).state == pb.DOCUMENT_STATE_INDEXED
    question = "How does the Kestrel choir tune its bells?"
    theirs = await research(channel, BOB, question, workflow_pb2.CACHE_POLICY_BYPASS)
    assert cited(theirs, bobs.name)
    assert not cited(theirs, doc.name)
    mine = await research(channel, ALICE, question, workflow_pb2.CACHE_POLICY_BYPASS)
    assert cited(mine, doc.name)


async def test_limits_and_bad_uploads_are_clear_errors(
    keyed_gateway: ServiceServer, channel: grpc.aio.Channel
) -> None:
    """Over research's size limit: INVALID_ARGUMENT naming file.data (gRPC); over the REST
    upload limit: 413; an unsupported media type, an empty file or a bad library id:
    INVALID_ARGUMENT with a BadRequest naming the field."""
    cases = [
        (b"x" * (RESEARCH_LIMIT + 1), "text/plain", "libraries/big", "file.data"),
        (b"", "text/plain", "libraries/empty", "file.data"),
        (b"PK\x03\x04 zip", "application/zip", "libraries/zip", "file.content_type"),
        (b"text", "text/plain", "libraries/Not Valid", "parent"),
    ]
    stub = library_grpc.LibraryServiceStub(channel)
    for data, media, parent, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateDocument(
                pb.CreateDocumentRequest(
                    parent=parent, file=httpbody_pb2.HttpBody(content_type=media, data=data)
                ),
                metadata=bearer(ALICE),
                timeout=30,
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        status = rpc_status.from_call(refused.value)
        assert status is not None
        violations = [
            v.field
            for detail in status.details
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR)
            for v in _bad_request(detail).field_violations
        ]
        assert violations == [field]
    async with httpx.AsyncClient(base_url=rest_url(keyed_gateway), timeout=30) as http:
        big = await http.post(
            "/v1/libraries/big/documents",
            content=b"y" * (UPLOAD_LIMIT + 1),
            headers={"content-type": "text/plain", **dict(bearer(ALICE))},
        )
    assert big.status_code == 413, big.text
    assert big.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


async def test_the_openapi_document_describes_raw_and_multipart_uploads(
    keyed_gateway: ServiceServer,
) -> None:
    """The gateway's /openapi.json: the upload takes any media type or a form whose `file`
    part is binary and whose `displayName` part is a field."""
    async with httpx.AsyncClient(base_url=rest_url(keyed_gateway), timeout=30) as http:
        document = (await http.get("/openapi.json")).json()
    upload = document["paths"]["/v1/libraries/{library}/documents"]["post"]["requestBody"]
    assert upload["content"]["*/*"]["schema"]["format"] == "binary"
    form = upload["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"]["format"] == "binary"
    assert set(form["properties"]) == {"file", "displayName"}


def _bad_request(detail: object) -> error_details_pb2.BadRequest:
    found = error_details_pb2.BadRequest()
    detail.Unpack(found)  # type: ignore[attr-defined]
    return found


async def test_the_cli_and_the_node_client_upload_with_progress_per_file(
    keyed_gateway: ServiceServer, tmp_path: Path
) -> None:
    """`ponder library add` prints each file's upload and its INDEXED or FAILED line and exits
    1 when one failed; `list`, `get` and `rm` work on what it uploaded; the Node client
    uploads a file and reports it INDEXED."""
    address = f"127.0.0.1:{keyed_gateway.port}"
    notes = tmp_path / "notes.md"
    notes.write_text(markdown("CLI notes", [("Usage", "Uploaded from the command line.")]))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(corrupt_pdf())
    env = {"PONDER_ADDRESS": address, "PONDER_API_KEY": ALICE}
    added = await ponder_async("library", "add", "-l", "cli", str(notes), str(broken), env=env)
    assert added.code == 1, added
    lines = added.out.splitlines()
    assert any(line.startswith(f"{notes}: uploaded as libraries/cli/documents/") for line in lines)
    assert any(line.startswith(f"{notes}: ") and "INDEXED" in line for line in lines), lines
    assert any(line.startswith(f"{broken}: ") and "FAILED" in line for line in lines), lines
    listed = await ponder_async("library", "list", "-l", "cli", "--json", env=env)
    documents = json.loads(listed.out)["documents"]
    assert [d["display_name"] for d in documents] == ["notes.md", "broken.pdf"]
    notes_id = documents[0]["name"].rsplit("/", 1)[1]
    got = await ponder_async("library", "get", "-l", "cli", notes_id, env=env)
    assert got.code == 0
    assert "INDEXED" in got.out
    removed = await ponder_async("library", "rm", "-l", "cli", notes_id, env=env)
    assert removed.code == 0
    assert "deleted" in removed.out
    again = await ponder_async("library", "get", "-l", "cli", notes_id, env=env)
    assert again.code == 3, again  # NOT_FOUND

    node = shutil.which("node")
    assert node, "node is part of the toolchain (make install runs npm ci)"
    page = tmp_path / "page.html"
    page.write_text(html_page("Node page", [("Body", "Uploaded from Node.")]))
    done = await asyncio.to_thread(
        subprocess.run,
        [
            node,
            str(ROOT / "clients" / "node" / "ponder-library-upload.mjs"),
            "--address",
            address,
            "--key",
            ALICE,
            "--library",
            "node",
            str(page),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["documents"][0]["state"] == "DOCUMENT_STATE_INDEXED"
    assert "INDEXED" in done.stdout.splitlines()[-2]
