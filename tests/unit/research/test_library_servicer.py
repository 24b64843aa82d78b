"""LibraryService on a real research server: google.rpc details of its refusals, the tenant
taken from x-ponder-tenant, page tokens, and the tenant's uploads in GetLibrary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ponder.library.v1 import library_service_pb2 as pb
from ponder.library.v1 import library_service_pb2_grpc as library_grpc
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_runtime.internal_auth import TENANT_HEADER


def _create(parent: str, data: bytes, media: str = "text/plain") -> pb.CreateDocumentRequest:
    return pb.CreateDocumentRequest(
        parent=parent, file=httpbody_pb2.HttpBody(content_type=media, data=data)
    )


async def test_refusals_carry_their_details_and_tenants_are_apart(
    start_research: Any, tmp_path: Path
) -> None:
    """A full library is RESOURCE_EXHAUSTED with an ErrorInfo naming the limit; a bad page
    token is INVALID_ARGUMENT naming page_token; tenant b neither sees nor counts tenant a's
    upload, and GetLibrary's version for a changes when a's document is indexed."""
    _, channel = await start_research(
        library_uploads_path=tmp_path / "uploads.sqlite3", library_max_documents=1
    )
    stub = library_grpc.LibraryServiceStub(channel)
    research = research_grpc.ResearchServiceStub(channel)
    as_a = ((TENANT_HEADER, "a"),)
    before = await research.GetLibrary(research_pb2.GetLibraryRequest(tenant="a"))
    created = await stub.CreateDocument(
        _create("libraries/one", b"# Note\n\nThe only note."), metadata=as_a
    )
    async for event in stub.WatchDocument(
        pb.WatchDocumentRequest(name=created.document.name), metadata=as_a
    ):
        last = event.document
    assert last.state == pb.DOCUMENT_STATE_INDEXED
    after = await research.GetLibrary(research_pb2.GetLibraryRequest(tenant="a"))
    assert after.version != before.version
    assert after.document_count == before.document_count + 1
    other = await research.GetLibrary(research_pb2.GetLibraryRequest(tenant="b"))
    assert other.document_count == before.document_count

    with pytest.raises(grpc.aio.AioRpcError) as full:
        await stub.CreateDocument(_create("libraries/one", b"another"), metadata=as_a)
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(full.value)
    assert status is not None
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.metadata["limit"] == "documents_per_library"
    # tenant b's library of the same id is another, empty library
    assert await stub.CreateDocument(
        _create("libraries/one", b"another"), metadata=((TENANT_HEADER, "b"),)
    )
    with pytest.raises(grpc.aio.AioRpcError) as token:
        await stub.ListDocuments(
            pb.ListDocumentsRequest(parent="libraries/one", page_token="nonsense"), metadata=as_a
        )
    assert token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (token.value.details() or "")
