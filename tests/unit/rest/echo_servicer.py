"""A grpc.aio servicer of the test-only ponder_testing.transcoding.v1.TranscodingService.

It echoes what it receives, so a transcoder test can see exactly which request a REST call
became. StreamEchoes and Fail fail on demand with the gRPC status code the request names.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from ponder_testing.transcoding.v1 import transcoding_pb2 as pb
from ponder_testing.transcoding.v1 import transcoding_pb2_grpc as pb_grpc


SERVED_BY = "echo-servicer"
CREATE_TIME = timestamp_pb2.Timestamp(seconds=1_700_000_000)  # 2023-11-14T22:13:20Z
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def status_code(code: int) -> grpc.StatusCode:
    """The grpc.StatusCode of a google.rpc.Code number (UNKNOWN for a number outside 0..16)."""
    return _STATUS_CODES.get(code, grpc.StatusCode.UNKNOWN)


def add_echo_servicer(server: grpc.aio.Server) -> EchoServicer:
    """Register a new EchoServicer on `server` and return it."""
    servicer = EchoServicer()
    pb_grpc.add_TranscodingServiceServicer_to_server(servicer, server)
    return servicer


class EchoServicer(pb_grpc.TranscodingServiceServicer):
    """Every method answers with its request's fields (see transcoding.proto)."""

    async def Echo(
        self, request: pb.EchoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.EchoResponse:
        """The name and message back."""
        return pb.EchoResponse(name=request.name, message=request.message)

    async def EchoQuery(
        self, request: pb.EchoQueryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.EchoQueryResponse:
        """The whole request back."""
        return pb.EchoQueryResponse(request=request)

    async def GetBook(
        self, request: pb.GetBookRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetBookResponse:
        """A book made from the name's parts; INVALID_ARGUMENT for a name of another shape."""
        parts = request.name.split("/")
        if len(parts) != 4 or parts[0] not in ("shelves", "archives") or parts[2] != "books":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad book name {request.name!r}")
        book = pb.Book(
            name=request.name,
            shelf_id=parts[1],
            id=parts[3],
            title=f"Book {parts[3]}",
            create_time=CREATE_TIME,
        )
        return pb.GetBookResponse(book=book, served_by=SERVED_BY)

    async def CreateBook(
        self, request: pb.CreateBookRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CreateBookResponse:
        """The book as received, plus its output-only name and create_time."""
        book = pb.Book()
        book.CopyFrom(request.book)
        book.name = f"{request.parent}/books/{request.book_id}"
        book.create_time.CopyFrom(CREATE_TIME)
        return pb.CreateBookResponse(book=book, parent=request.parent, book_id=request.book_id)

    async def UpdateBook(
        self, request: pb.UpdateBookRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.UpdateBookResponse:
        """The book and the mask as received."""
        return pb.UpdateBookResponse(book=request.book, update_mask=request.update_mask)

    async def DeleteBook(
        self, request: pb.DeleteBookRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteBookResponse:
        """The name and force flag back."""
        return pb.DeleteBookResponse(name=request.name, force=request.force)

    async def ArchiveBook(
        self, request: pb.ArchiveBookRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ArchiveBookResponse:
        """The name and reason back."""
        return pb.ArchiveBookResponse(name=request.name, reason=request.reason)

    async def GetFile(
        self, request: pb.GetFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetFileResponse:
        """The path back, and its UTF-8 bytes as the content."""
        return pb.GetFileResponse(path=request.path, content=request.path.encode())

    async def UploadFile(
        self, request: pb.UploadFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.UploadFileResponse:
        """What the upload carried."""
        return pb.UploadFileResponse(
            shelf=request.shelf,
            content_type=request.file.content_type,
            data=request.file.data,
            title=request.title,
            copies=request.copies,
        )

    async def StatFile(
        self, request: pb.StatFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StatFileResponse:
        """The path back, and the length of its UTF-8 bytes as the size."""
        return pb.StatFileResponse(path=request.path, size_bytes=len(request.path.encode()))

    async def StreamEchoes(
        self, request: pb.StreamEchoesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamEchoesResponse]:
        """`count` echoes, `interval` apart; with `fail_code` other than OK, only the first
        `fail_after` of them and then that status."""
        failing = request.fail_code != code_pb2.OK
        count = min(request.count, request.fail_after) if failing else request.count
        pause = request.interval.ToTimedelta().total_seconds()
        for index in range(count):
            if pause > 0:
                await asyncio.sleep(pause)
            yield pb.StreamEchoesResponse(index=index, message=request.message)
        if failing:
            await context.abort(
                status_code(request.fail_code), f"failed after {count} messages as asked"
            )

    async def Fail(
        self, request: pb.FailRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.FailResponse:
        """Fails with the requested code and message; with OK, answers with both."""
        if request.code != code_pb2.OK:
            await context.abort(status_code(request.code), request.message)
        return pb.FailResponse(code=request.code, message=request.message)

    async def Ping(
        self, request: pb.PingRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PingResponse:
        """The message back."""
        return pb.PingResponse(message=request.message)
