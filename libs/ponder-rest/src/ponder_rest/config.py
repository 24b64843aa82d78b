"""The facade's options (FacadeConfig), one frozen dataclass the gateway builds from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder_rest.codec import JsonOptions


@dataclass(frozen=True, slots=True)
class FacadeConfig:
    """Behaviour of the facade (the gateway builds it from its settings)."""

    json: JsonOptions = field(default_factory=JsonOptions)
    max_body_bytes: int = 1024 * 1024
    # Bodies of routes whose body field is a google.api.HttpBody (file uploads), raw or
    # multipart/form-data: larger ones are refused with 413.
    max_upload_bytes: int = 8 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    cors_allow_credentials: bool = False
    cors_max_age_seconds: int = 600
    default_timeout_seconds: float | None = None  # none: no hidden deadline
    access_log: bool = True
    health_service: str = ""
    sse_keepalive_seconds: float = 15.0  # a comment frame when an SSE stream is idle this long
    # SSE resumption, by naming convention (no annotation needed): a stream reply's integer
    # field called `sse_id_field` becomes each event's `id:` (when not 0), and a reconnecting
    # client's `Last-Event-ID` header fills the request's integer field called
    # `sse_resume_field` (when the method's request has one and the query left it 0).
    sse_id_field: str = ""
    sse_resume_field: str = ""
