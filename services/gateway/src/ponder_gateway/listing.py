"""ListWorkflows: the AIP-160 filter subset it understands, and opaque page tokens."""

from __future__ import annotations

import base64
import hashlib
import re

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.store import ListFilter
from ponder_runtime import FieldViolation, InvalidArgumentError


_TERM = re.compile(r"^\s*(state|kind)\s*=\s*([A-Za-z_]+)\s*$")


def parse_filter(text: str) -> ListFilter:
    """`state = RUNNING`, `kind = RESEARCH AND state = SUCCEEDED`, or `state = A OR state = B`
    (OR within one field). Enum values may carry their prefix (WORKFLOW_STATE_RUNNING)."""
    states: list[int] = []
    kinds: list[int] = []
    if not text.strip():
        return ListFilter()
    for clause in re.split(r"\bAND\b", text):
        for term in re.split(r"\bOR\b", clause):
            match = _TERM.match(term)
            if match is None:
                raise InvalidArgumentError(
                    [
                        FieldViolation(
                            "filter",
                            f"cannot read {term.strip()!r}: use "
                            "`state = RUNNING` or `kind = RESEARCH`, joined by AND/OR",
                        )
                    ]
                )
            field, value = match.groups()
            enum = workflow_pb2.WorkflowState if field == "state" else workflow_pb2.WorkflowKind
            prefix = "WORKFLOW_STATE_" if field == "state" else "WORKFLOW_KIND_"
            name = value.upper() if value.upper().startswith(prefix) else prefix + value.upper()
            if name not in enum.DESCRIPTOR.values_by_name or name.endswith("_UNSPECIFIED"):
                raise InvalidArgumentError([FieldViolation("filter", f"unknown {field} {value!r}")])
            (states if field == "state" else kinds).append(enum.Value(name))
    return ListFilter(tuple(dict.fromkeys(states)), tuple(dict.fromkeys(kinds)))


def _digest(filter_text: str) -> str:
    return hashlib.sha256(filter_text.encode()).hexdigest()[:8]


def make_token(workflow: workflow_pb2.Workflow, filter_text: str) -> str:
    """A token that resumes after `workflow` for the same filter."""
    raw = f"{_digest(filter_text)}|{workflow.create_time.ToNanoseconds()}|{workflow.name}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def read_token(token: str, filter_text: str) -> tuple[int, str] | None:
    """The (create_time, name) position a token resumes after; INVALID_ARGUMENT when it is
    malformed or was made for another filter."""
    if not token:
        return None
    try:
        digest, nanos, name = base64.urlsafe_b64decode(token.encode()).decode().split("|", 2)
        position = (int(nanos), name)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgumentError(
            [FieldViolation("page_token", "is not a valid page token")]
        ) from None
    if digest != _digest(filter_text):
        raise InvalidArgumentError([FieldViolation("page_token", "was made for another filter")])
    return position
