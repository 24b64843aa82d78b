"""JSON logs (python-json-logger, encoded with orjson) carrying the current OpenTelemetry trace
and span ids."""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from pythonjsonlogger.orjson import OrjsonFormatter


_JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(service)s %(trace_id)s %(span_id)s"


class TraceContextFilter(logging.Filter):
    """Adds `trace_id`, `span_id` (hex, empty outside a span) and `service` to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the ids; never drops a record."""
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else ""
        record.span_id = format(context.span_id, "016x") if context.is_valid else ""
        record.service = self.service
        return True


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Send all logs to stderr, as JSON objects (or plain text), at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            OrjsonFormatter(
                _JSON_FIELDS,
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp=True,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s")
        )
    # The logging HOWTO's "Optimization": none of our fields is the caller's file and line,
    # thread or process, so records skip finding them (a stack walk per line).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
