"""The ListWorkflows filter language: parsing, precedence, evaluation, SQL and errors."""

from __future__ import annotations

import sqlite3

import pytest

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway import filters
from ponder_runtime import InvalidArgumentError


JAN = 1767225600  # 2026-01-01T00:00:00Z


def _workflow(name: str, state: str, kind: str, topic: str, created: int) -> pb.Workflow:
    workflow = pb.Workflow(
        name=f"workflows/{name}",
        state=f"WORKFLOW_STATE_{state}",
        kind=f"WORKFLOW_KIND_{kind}",
        topic=topic,
    )
    workflow.create_time.FromSeconds(created)
    workflow.update_time.FromSeconds(created + 60)
    return workflow


RECORDS = [
    _workflow("a", "SUCCEEDED", "RESEARCH", "Dense Retrieval", JAN),
    _workflow("b", "FAILED", "RESEARCH", "sparse retrieval", JAN + 10),
    _workflow("c", "RUNNING", "REFLECTION", "Self-reflection", JAN + 20),
    _workflow("d", "SUCCEEDED", "RESEARCH_REFLECTION", "RAG agents", JAN + 86400),
    _workflow("e", "CANCELLED", "REFLECTION", "dense agents", JAN + 30),
]

CASES = [
    ("", "abcde"),
    ("   ", "abcde"),
    ("state = SUCCEEDED", "ad"),
    ("state=succeeded", "ad"),
    ("state = WORKFLOW_STATE_SUCCEEDED", "ad"),
    ("state != FAILED", "acde"),
    ("kind = research-reflection", "d"),
    ("kind = RESEARCH_REFLECTION", "d"),
    ("state = SUCCEEDED OR kind = REFLECTION", "acde"),  # OR across two fields is OR
    ("state = SUCCEEDED AND kind = RESEARCH", "a"),
    ("state = SUCCEEDED kind = RESEARCH", "a"),  # juxtaposition is AND
    ("(state = SUCCEEDED)", "ad"),
    ("(state = SUCCEEDED) AND kind = RESEARCH", "a"),
    ("kind = RESEARCH AND state = FAILED OR state = RUNNING", "bc"),  # AND binds tighter
    ("kind = RESEARCH AND (state = FAILED OR state = RUNNING)", "b"),
    ("state = RUNNING OR kind = RESEARCH AND state = FAILED", "bc"),
    ("NOT state = SUCCEEDED", "bce"),
    ("-state = SUCCEEDED", "bce"),
    ("NOT (state = SUCCEEDED OR state = FAILED)", "ce"),
    ("NOT NOT state = FAILED", "b"),
    ('topic:"retrieval"', "ab"),
    ('topic:"DENSE"', "ae"),
    ("topic:agents", "de"),
    ('topic:"dense retrieval"', "a"),
    ('topic:"self-reflection" OR topic:rag', "cd"),
    ('create_time > "2026-01-01T00:00:15Z"', "cde"),
    ("create_time >= 2026-01-01T00:00:10Z", "bcde"),
    ('create_time < "2026-01-01T00:00:10Z"', "a"),
    ('create_time <= "2026-01-01T00:00:10+00:00"', "ab"),
    ('create_time = "2026-01-01T00:00:00Z"', "a"),
    ('update_time > "2026-01-01T02:00:00+01:00"', "d"),  # zones are honoured
    ('create_time >= "2026-01-01T00:00:00Z" AND create_time < "2026-01-02T00:00:00Z"', "abce"),
    ('state = SUCCEEDED AND NOT topic:"rag"', "a"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_evaluation(text, expected):
    """Each filter selects exactly the records it should, with the usual precedence."""
    tree = filters.parse(text)
    chosen = "".join(w.name[-1] for w in RECORDS if filters.matches(tree, w))
    assert chosen == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_sql_agrees_with_evaluation(text, expected):
    """The compiled SQL selects the same rows as the evaluator, in a real SQLite table."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE w (name TEXT, st INT, kd INT, ct INT, ut INT, tp TEXT)")
    for w in RECORDS:
        created, updated = w.create_time.ToNanoseconds(), w.update_time.ToNanoseconds()
        row = (w.name[-1], w.state, w.kind, created, updated, w.topic.lower())
        db.execute("INSERT INTO w VALUES (?,?,?,?,?,?)", row)
    columns = {"state": "st", "kind": "kd", "create_time": "ct", "update_time": "ut", "topic": "tp"}
    sql, args = filters.to_sql(filters.parse(text), columns)
    rows = db.execute(f"SELECT name FROM w WHERE {sql} ORDER BY name", args).fetchall()
    assert "".join(row[0] for row in rows) == expected


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("state = ", 9, "expected a value"),
        ("state == RUNNING", 8, "expected a value"),
        ("(state = RUNNING", 17, "expected ')'"),
        ("state = RUNNING)", 16, "unexpected ')'"),
        ("status = RUNNING", 1, "unknown field 'status'"),
        ("state = DONE", 9, "unknown state 'DONE'"),
        ("state = UNSPECIFIED", 9, "unknown state"),
        ("kind > RESEARCH", 6, "kind takes = or !="),
        ("state = RUNNING AND", 20, "the end of the filter"),
        ("state = RUNNING OR OR kind = RESEARCH", 20, "'OR'"),
        ('create_time > "yesterday"', 15, "RFC 3339"),
        ('create_time > "2026-01-01T00:00:00"', 15, "with a zone"),
        ("create_time : 2026-01-01T00:00:00Z", 13, "not ':'"),
        ("topic = retrieval", 7, "topic takes `:`"),
        ('topic:""', 7, "needs words"),
        ("state = RUNNING & kind = RESEARCH", 17, "unknown field '&'"),
        ("AND state = RUNNING", 1, "expected a comparison"),
    ],
)
def test_errors_name_the_position(text, position, words):
    """A filter that cannot be read is INVALID_ARGUMENT on `filter`, naming where and why."""
    with pytest.raises(InvalidArgumentError) as caught:
        filters.parse(text)
    [violation] = caught.value.violations
    assert violation.field == "filter"
    assert violation.description.startswith(f"at position {position}:"), violation.description
    assert words in violation.description
