"""gRPC servicer of ponder.library.v1.LibraryService: proto ↔ the uploads domain. The tenant
is the `x-ponder-tenant` metadata the gateway sets from the caller's API key (internal calls
carry the deployment's token, so it is the gateway's word); without it, the default tenant."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from ponder.library.v1 import library_service_pb2 as library_pb2
from ponder.library.v1 import library_service_pb2_grpc as library_grpc
from ponder_research.uploads.manager import (
    BadUpload,
    DocumentNotFound,
    LibraryFull,
    UploadError,
    Uploads,
)
from ponder_research.uploads.store import DocumentState, StoredDocument
from ponder_runtime import (
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PonderError,
    ResourceExhaustedError,
)
from ponder_runtime.internal_auth import TENANT_HEADER
from ponder_runtime.protobuf import timestamp


DEFAULT_TENANT = "default"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

STATE_TO_PROTO = {
    DocumentState.PENDING: library_pb2.DOCUMENT_STATE_PENDING,
    DocumentState.INDEXED: library_pb2.DOCUMENT_STATE_INDEXED,
    DocumentState.FAILED: library_pb2.DOCUMENT_STATE_FAILED,
}


def tenant_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's tenant, as the gateway stated it."""
    for key, value in context.invocation_metadata() or ():
        if key == TENANT_HEADER:
            text = value if isinstance(value, str) else value.decode()
            return text or DEFAULT_TENANT
    return DEFAULT_TENANT


def document_to_proto(doc: StoredDocument) -> library_pb2.Document:
    """The public form of a stored document."""
    return library_pb2.Document(
        name=f"libraries/{doc.library}/documents/{doc.id}",
        display_name=doc.display_name,
        media_type=doc.media_type,
        size_bytes=doc.size_bytes,
        sha256=doc.sha256,
        state=STATE_TO_PROTO[doc.state],
        failure_reason=doc.failure_reason,
        passage_count=doc.passage_count,
        create_time=timestamp(doc.create_time),
        update_time=timestamp(doc.update_time),
    )


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """Domain refusals raised inside, raised again in their gRPC-mapped form."""
    try:
        yield
    except BadUpload as exc:
        raise InvalidArgumentError([FieldViolation(exc.field, exc.reason)]) from exc
    except LibraryFull as exc:
        raise ResourceExhaustedError(str(exc), metadata={"limit": "documents_per_library"}) from exc
    except DocumentNotFound as exc:
        raise NotFoundError(str(exc)) from exc
    except UploadError as exc:
        raise PonderError(str(exc)) from exc


def _page_token(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"after:{sequence}".encode()).decode()


def _after(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "after":
            raise ValueError(token)
        return int(number)
    except ValueError:
        raise InvalidArgumentError(
            [FieldViolation("page_token", "not a token from ListDocuments")]
        ) from None


class LibraryServicer(library_grpc.LibraryServiceServicer):
    """Uploads, reads, lists, deletes and watches the caller's tenant's documents."""

    def __init__(self, uploads: Uploads) -> None:
        self._uploads = uploads

    async def CreateDocument(
        self,
        request: library_pb2.CreateDocumentRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> library_pb2.CreateDocumentResponse:
        """Store the file and start indexing it (or return the document with the same bytes)."""
        with _refusals():
            doc = await self._uploads.create(
                tenant_of(context),
                request.parent,
                request.file.data,
                request.file.content_type,
                request.display_name,
            )
        return library_pb2.CreateDocumentResponse(document=document_to_proto(doc))

    async def GetDocument(
        self, request: library_pb2.GetDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> library_pb2.GetDocumentResponse:
        """The document with its state."""
        with _refusals():
            doc = await self._uploads.get(tenant_of(context), request.name)
            return library_pb2.GetDocumentResponse(document=document_to_proto(doc))

    async def ListDocuments(
        self, request: library_pb2.ListDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> library_pb2.ListDocumentsResponse:
        """A page of the library's documents, oldest first."""
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgumentError(
                [FieldViolation("page_size", f"must be 0 (default) to {MAX_PAGE_SIZE}")]
            )
        size = request.page_size or DEFAULT_PAGE_SIZE
        with _refusals():
            docs = await self._uploads.page(
                tenant_of(context), request.parent, after=_after(request.page_token), limit=size + 1
            )
        token = _page_token(docs[size - 1].sequence) if len(docs) > size else ""
        return library_pb2.ListDocumentsResponse(
            documents=[document_to_proto(doc) for doc in docs[:size]], next_page_token=token
        )

    async def DeleteDocument(
        self,
        request: library_pb2.DeleteDocumentRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> library_pb2.DeleteDocumentResponse:
        """Delete the document and its passages."""
        with _refusals():
            version = await self._uploads.delete(tenant_of(context), request.name)
        return library_pb2.DeleteDocumentResponse(library_version=version)

    async def WatchDocument(
        self, request: library_pb2.WatchDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[library_pb2.WatchDocumentResponse]:
        """The document's state now and at each change, until it is INDEXED or FAILED."""
        with _refusals():
            async for doc in self._uploads.watch(tenant_of(context), request.name):
                yield library_pb2.WatchDocumentResponse(document=document_to_proto(doc))
