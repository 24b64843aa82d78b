"""`ponder library`: upload documents to a library (progress per file), list, show and delete
them, over the gateway's LibraryService."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from google.api import httpbody_pb2
from google.protobuf import json_format
from rich.console import Console

from ponder.library.v1 import library_service_pb2 as pb
from ponder.library.v1 import library_service_pb2_grpc as library_grpc
from ponder_cli.errors import CliError, ExitCode, from_rpc_error
from ponder_cli.gateway import Client, Target
from ponder_cli.options import Address, ApiKey, Json, Tls


# Media types by file suffix (the server reads these four; others are refused there).
MEDIA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
DEFAULT_LIBRARY = "default"

library_app = typer.Typer(
    name="library",
    help="Your documents, searched and cited by research workflows (the `library` source).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Library = Annotated[str, typer.Option("--library", "-l", help="The library's id (libraries/<id>).")]
DocumentArg = Annotated[
    str,
    typer.Argument(help="The document: libraries/<id>/documents/<doc>, or <doc> in --library."),
]
Timeout = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait per call.")]
DEFAULT_ADDRESS = "127.0.0.1:50051"
STATE_NAMES = {
    pb.DOCUMENT_STATE_PENDING: "PENDING",
    pb.DOCUMENT_STATE_INDEXED: "INDEXED",
    pb.DOCUMENT_STATE_FAILED: "FAILED",
}


def media_type(path: Path) -> str:
    """The media type of a file, by its suffix."""
    known = MEDIA_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def document_name(document: str, library: str) -> str:
    """The full name of a document given by name or by id."""
    if document.startswith("libraries/"):
        return document
    return f"libraries/{library}/documents/{document}"


def describe(doc: pb.Document) -> str:
    """One line about a document."""
    state = STATE_NAMES.get(doc.state, "UNSPECIFIED")
    detail = (
        f"{doc.passage_count} passages"
        if doc.state == pb.DOCUMENT_STATE_INDEXED
        else doc.failure_reason
        if doc.state == pb.DOCUMENT_STATE_FAILED
        else f"{doc.size_bytes} bytes"
    )
    return f"{doc.name}  {state}  {doc.display_name}  ({detail})"


def to_json(message: Any) -> str:
    """A message as one line of JSON (proto field names)."""
    return json_format.MessageToJson(message, indent=None, preserving_proto_field_name=True)


class LibraryClient(Client):
    """LibraryService over a sync channel; failures raise CliError."""

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._stub = library_grpc.LibraryServiceStub(self._channel)

    def upload(self, library: str, path: Path, timeout: float) -> pb.Document:
        """CreateDocument with the file's bytes."""
        request = pb.CreateDocumentRequest(
            parent=f"libraries/{library}",
            file=httpbody_pb2.HttpBody(content_type=media_type(path), data=path.read_bytes()),
            display_name=path.name,
        )
        reply: pb.CreateDocumentResponse = self._unary(self._stub.CreateDocument, request, timeout)
        return reply.document

    def get(self, name: str, timeout: float) -> pb.Document:
        """GetDocument."""
        reply: pb.GetDocumentResponse = self._unary(
            self._stub.GetDocument, pb.GetDocumentRequest(name=name), timeout
        )
        return reply.document

    def list(self, library: str, page_token: str, timeout: float) -> pb.ListDocumentsResponse:
        """One page of ListDocuments."""
        request = pb.ListDocumentsRequest(parent=f"libraries/{library}", page_token=page_token)
        reply: pb.ListDocumentsResponse = self._unary(self._stub.ListDocuments, request, timeout)
        return reply

    def delete(self, name: str, timeout: float) -> pb.DeleteDocumentResponse:
        """DeleteDocument."""
        reply: pb.DeleteDocumentResponse = self._unary(
            self._stub.DeleteDocument, pb.DeleteDocumentRequest(name=name), timeout
        )
        return reply

    def watch(self, name: str, timeout: float) -> Iterator[pb.Document]:
        """The document at each state change until INDEXED or FAILED."""
        stream = self._stub.WatchDocument(
            pb.WatchDocumentRequest(name=name), timeout=timeout, metadata=self.target.metadata()
        )
        try:
            for event in stream:
                yield event.document
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target.address) from exc


def _run(address: str, key: str | None, tls: bool, work: Any) -> None:
    """Run `work(client, console)`, report a CliError on stderr, exit with its status."""
    client = LibraryClient(Target(address, key or None, tls))
    console = Console(highlight=False, soft_wrap=True)
    try:
        code = work(client, console)
    except CliError as exc:
        Console(stderr=True, highlight=False).print(
            f"ponder: {exc.message}", markup=False, soft_wrap=True
        )
        code = exc.exit_code
    finally:
        client.close()
    raise typer.Exit(int(code))


@library_app.command("add")
def add(
    *,
    files: Annotated[list[Path], typer.Argument(help="Files: .pdf, .md, .html, .txt.")],
    library: Library = DEFAULT_LIBRARY,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow indexing to INDEXED or FAILED.")
    ] = True,
    timeout: Timeout = 300.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> None:
    """Upload files, one line of progress each (uploaded, then indexed or failed)."""

    def work(client: LibraryClient, console: Console) -> int:
        failed = 0
        for path in files:
            if not path.is_file():
                console.print(f"{path}: not a file", markup=False)
                failed += 1
                continue
            doc = client.upload(library, path, timeout)
            if as_json:
                print(to_json(doc), flush=True)
            else:
                console.print(f"{path}: uploaded as {describe(doc)}", markup=False)
            if wait:
                for update in client.watch(doc.name, timeout):
                    doc = update
                    if doc.state == pb.DOCUMENT_STATE_PENDING:
                        continue
                    if as_json:
                        print(to_json(doc), flush=True)
                    else:
                        console.print(f"{path}: {describe(doc)}", markup=False)
            if doc.state == pb.DOCUMENT_STATE_FAILED:
                failed += 1
        return ExitCode.WORKFLOW_UNSUCCESSFUL if failed else ExitCode.OK

    _run(address, key, tls, work)


@library_app.command("list")
def list_documents(
    *,
    library: Library = DEFAULT_LIBRARY,
    page_token: Annotated[str, typer.Option(help="Where the previous page ended.")] = "",
    timeout: Timeout = 30.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> None:
    """List the library's documents, oldest first."""

    def work(client: LibraryClient, console: Console) -> int:
        page = client.list(library, page_token, timeout)
        if as_json:
            print(to_json(page), flush=True)
            return ExitCode.OK
        if not page.documents:
            console.print(f"no documents in libraries/{library}", markup=False)
        for doc in page.documents:
            console.print(describe(doc), markup=False)
        if page.next_page_token:
            console.print(f"more: ponder library list --page-token {page.next_page_token}")
        return ExitCode.OK

    _run(address, key, tls, work)


@library_app.command("get")
def get_document(
    *,
    document: DocumentArg,
    library: Library = DEFAULT_LIBRARY,
    timeout: Timeout = 30.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> None:
    """Show a document and its indexing state."""

    def work(client: LibraryClient, console: Console) -> int:
        doc = client.get(document_name(document, library), timeout)
        if as_json:
            print(to_json(doc), flush=True)
        else:
            console.print(describe(doc), markup=False)
            console.print(f"sha256 {doc.sha256}  {doc.media_type}", markup=False)
        return ExitCode.OK

    _run(address, key, tls, work)


@library_app.command("rm")
def remove(
    *,
    documents: Annotated[list[str], typer.Argument(help="Documents (names or ids).")],
    library: Library = DEFAULT_LIBRARY,
    timeout: Timeout = 30.0,
    address: Address = DEFAULT_ADDRESS,
    key: ApiKey = None,
    tls: Tls = False,
    as_json: Json = False,
) -> None:
    """Delete documents; their passages leave the index at once."""

    def work(client: LibraryClient, console: Console) -> int:
        for document in documents:
            name = document_name(document, library)
            reply = client.delete(name, timeout)
            if as_json:
                print(to_json(reply), flush=True)
            else:
                console.print(
                    f"{name}: deleted (library version {reply.library_version})", markup=False
                )
        return ExitCode.OK

    _run(address, key, tls, work)
