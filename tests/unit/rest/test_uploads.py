"""File uploads through the REST facade, on real sockets: a route whose body field is a
google.api.HttpBody takes the raw body in any media type, or a multipart/form-data form whose
part named after the field is the file and whose other parts set fields by name; the upload
limit answers 413; the OpenAPI document describes both forms."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ponder_rest.app import FacadeConfig
from ponder_rest.multipart import MultipartError, parse_form_data
from tests.unit.rest.facade_rig import OPENAPI, Backend, error_of, serve, violation


PDF = b"%PDF-1.4\n\x00\xff binary bytes \r\n--not-a-boundary\n%%EOF\n"


@pytest.fixture(scope="module")
async def uploads(local: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A facade whose uploads may be 4 KiB (JSON bodies keep the default limit)."""
    async with serve(local, FacadeConfig(max_upload_bytes=4096)) as (client, _):
        yield client


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_a_raw_body_is_the_file_with_its_content_type(uploads: httpx.AsyncClient):
    """The body's bytes and Content-Type fill the HttpBody; the path and query set the rest."""
    reply = await uploads.post(
        "/v1/shelves/s1/files?title=Report&copies=2",
        content=PDF,
        headers={"content-type": "application/pdf"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "shelf": "shelves/s1",
        "contentType": "application/pdf",
        "data": _base64(PDF),
        "title": "Report",
        "copies": 2,
    }


async def test_a_raw_body_without_content_type_is_octet_stream(uploads: httpx.AsyncClient):
    """No Content-Type: application/octet-stream (no 415: any media type is a file)."""
    reply = await uploads.post("/v1/shelves/s1/files", content=b"plain")
    assert reply.status_code == 200, reply.text
    assert reply.json()["contentType"] == "application/octet-stream"


async def test_a_multipart_form_maps_the_file_part_and_fields_by_name(
    uploads: httpx.AsyncClient,
):
    """The part `file` is the HttpBody (its own Content-Type), `title` and `copies` parts set
    those fields, as curl -F sends them."""
    reply = await uploads.post(
        "/v1/shelves/s2/files",
        files={"file": ("report.pdf", PDF, "application/pdf")},
        data={"title": "Q3 report", "copies": "3"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "shelf": "shelves/s2",
        "contentType": "application/pdf",
        "data": _base64(PDF),
        "title": "Q3 report",
        "copies": 3,
    }


@pytest.mark.parametrize(
    ("files", "data", "field"),
    [
        ({"title": (None, b"no file")}, {}, "file"),
        ({"file": ("a.txt", b"a", "text/plain")}, {"nonsense": "x"}, "nonsense"),
        ({"file": ("a.txt", b"a", "text/plain")}, {"copies": "many"}, "copies"),
        ({"file": ("a.txt", b"a", "text/plain")}, {"shelf": "shelves/x"}, "shelf"),
    ],
    ids=["no-file-part", "unknown-field", "bad-number", "path-bound-field"],
)
async def test_bad_forms_are_400_naming_the_field(
    uploads: httpx.AsyncClient, files: dict[str, Any], data: dict[str, str], field: str
):
    """A form without the file part, or with a part naming no field, a bad value or a field
    the path binds: 400 with a BadRequest naming it."""
    reply = await uploads.post("/v1/shelves/s3/files", files=files, data=data)
    assert violation(reply)[0] == field


async def test_an_upload_over_the_limit_is_413(uploads: httpx.AsyncClient):
    """A raw body or a form over max_upload_bytes: 413 RESOURCE_EXHAUSTED."""
    big = b"x" * 5000
    raw = await uploads.post("/v1/shelves/s1/files", content=big)
    assert error_of(raw, 413)["code"] == 8
    form = await uploads.post("/v1/shelves/s1/files", files={"file": ("b.bin", big)})
    assert error_of(form, 413)["code"] == 8


def test_malformed_multipart_bodies_are_refused() -> None:
    """No boundary, or no parts: MultipartError saying so."""
    with pytest.raises(MultipartError, match="boundary"):
        parse_form_data(b"x", "multipart/form-data")
    with pytest.raises(MultipartError, match="no parts"):
        parse_form_data(b"--b--\r\n", "multipart/form-data; boundary=b")


def test_openapi_describes_raw_and_multipart_uploads() -> None:
    """The upload operation takes */* (binary) or a form with the binary `file` part and the
    scalar fields (not the path-bound one)."""
    body = OPENAPI["paths"]["/v1/{shelf}/files"]["post"]["requestBody"]
    assert body["content"]["*/*"]["schema"] == {"type": "string", "format": "binary"}
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]
    assert form["properties"]["file"]["format"] == "binary"
    assert set(form["properties"]) == {"file", "title", "copies"}


def test_utf8_part_headers_are_read_and_unreadable_ones_refused() -> None:
    """A UTF-8 filename (RFC 7578) comes back as text; header bytes that are no parameters at
    all are a MultipartError, never a crash (found by the REST fuzz test)."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="r\xc3\xa9sum\xc3\xa9.md"'
        b"\r\nContent-Type: text/markdown\r\n\r\n# hi\r\n--b--\r\n"
    )
    (part,) = parse_form_data(body, "multipart/form-data; boundary=b")
    assert (part.name, part.filename, part.content_type) == ("file", "résumé.md", "text/markdown")
    assert bytes(part.data) == b"# hi"
    emoji = "multipart/form-data; boundary=\U0001f600"
    with pytest.raises(MultipartError):
        parse_form_data(b"--x--", emoji)
