"""`multipart/form-data` bodies into their parts (name, filename, media type, bytes), parsed
with python-multipart's streaming parser; a malformed body is a MultipartError saying why."""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header


FORM_DATA = "multipart/form-data"
MAX_PARTS = 64


class MultipartError(ValueError):
    """The body is not a well-formed multipart/form-data body."""


@dataclass(slots=True)
class Part:
    """One part of a form: its field name, file name (if any), media type and bytes."""

    name: str = ""
    filename: str = ""
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)


def is_form_data(content_type: str) -> bool:
    """Whether a Content-Type header names multipart/form-data."""
    return content_type.split(";", 1)[0].strip().lower() == FORM_DATA


def parse_form_data(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/form-data body, in order."""
    try:
        _, options = parse_options_header(content_type)
    except (UnicodeError, ValueError) as exc:
        raise MultipartError(f"unreadable Content-Type parameters: {exc}") from None
    boundary = options.get(b"boundary")
    if not boundary:
        raise MultipartError("the Content-Type multipart/form-data has no boundary")
    parts: list[Part] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    headers: dict[str, str] = {}

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts")
        parts.append(Part())
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        name = header["field"].decode("latin-1").strip().lower()
        # latin-1 keeps the bytes as they came (a UTF-8 filename included); the parameters
        # are decoded as UTF-8 once parsed
        headers[name] = header["value"].decode("latin-1").strip()
        header["field"], header["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        part = parts[-1]
        kind, options = parse_options_header(headers.get("content-disposition", ""))
        if kind != b"form-data" or b"name" not in options:
            raise MultipartError("a part has no Content-Disposition: form-data with a name")
        part.name = options[b"name"].decode("utf-8", "replace")
        part.filename = options.get(b"filename", b"").decode("utf-8", "replace")
        part.content_type = (
            headers.get("content-type", "").encode("latin-1").decode("utf-8", "replace")
        )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartError:
        raise
    except (MultipartParseError, UnicodeError, ValueError) as exc:
        raise MultipartError(f"malformed multipart body: {exc}") from None
    if not parts:
        raise MultipartError("the form has no parts")
    return parts
