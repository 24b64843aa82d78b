"""ListWorkflows filters: an AIP-160 subset parsed to a tree that evaluates a record or compiles
to SQL.

Grammar (keywords upper case, as in AIP-160; `-` is a short NOT)::

    expression := disjunct { "OR" disjunct }
    disjunct   := conjunct { ["AND"] conjunct }        (juxtaposition is AND, as in AIP-160)
    conjunct   := ("NOT" | "-") conjunct | "(" expression ")" | term
    term       := FIELD OP VALUE | "topic" ":" VALUE
    FIELD      := state | kind | create_time | update_time
    OP         := "=" | "!=" | "<" | "<=" | ">" | ">="

Precedence is the usual one, NOT over AND over OR (AIP-160 itself binds OR tighter; mixing both
without parentheses reads as SQL and Python do). `state` and `kind` take `=` and `!=` with an enum
value with or without its prefix, in any case (`succeeded`, `WORKFLOW_STATE_SUCCEEDED`,
`research-reflection`); the times take every operator with an RFC 3339 value; `topic:"words"`
holds when the topic contains the words (case-insensitive). A syntax error names its position.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.principals import DEFAULT_TENANT
from ponder_runtime import FieldViolation, InvalidArgumentError


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op><=|>=|!=|=|<|>|:)
      | (?P<paren>[()])
      | (?P<minus>-(?=[\s(A-Za-z_]))
      | (?P<word>(?:[^\s()"=!<>:]|(?<=\d):(?=\d))+)
    )""",
    re.VERBOSE,
)
_ENUM_FIELDS = {
    "state": (workflow_pb2.WorkflowState, "WORKFLOW_STATE_"),
    "kind": (workflow_pb2.WorkflowKind, "WORKFLOW_KIND_"),
}
_TIME_FIELDS = ("create_time", "update_time")
_FIELDS = (*_ENUM_FIELDS, *_TIME_FIELDS, "topic")
_KEYWORDS = ("AND", "OR", "NOT")
_SQL_OPERATORS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True, slots=True)
class Compare:
    """`field op value`: an enum field against an enum number, or a time against nanoseconds."""

    field: str
    op: str
    value: int


@dataclass(frozen=True, slots=True)
class Contains:
    """`topic:"words"`: the topic contains `words` (lower-cased), case-insensitively."""

    words: str


@dataclass(frozen=True, slots=True)
class Owner:
    """The record belongs to `tenant` (added by the server, never parsed from a filter)."""

    tenant: str


@dataclass(frozen=True, slots=True)
class Not:
    """The negation of `operand`."""

    operand: Filter


@dataclass(frozen=True, slots=True)
class All:
    """Every operand holds (AND)."""

    operands: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Any:
    """At least one operand holds (OR)."""

    operands: tuple[Filter, ...]


Filter: TypeAlias = Compare | Contains | Owner | Not | All | Any
EVERYTHING: Filter = All(())


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    position: int


def _error(position: int, message: str) -> InvalidArgumentError:
    return InvalidArgumentError([FieldViolation("filter", f"at position {position}: {message}")])


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].isspace():
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            start = len(text) - len(text[position:].lstrip())
            raise _error(start + 1, f"unexpected {text[start]!r}")
        kind = match.lastgroup
        start = match.start(kind)
        word = match.group(kind)
        if kind == "word" and word in _KEYWORDS:
            kind = word
        elif kind == "string":
            word = re.sub(r"\\(.)", r"\1", word[1:-1])
        tokens.append(_Token(kind, word, start + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    """Recursive descent over the token list; positions are 1-based characters."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._at = 0

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _take(self) -> _Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def parse(self) -> Filter:
        tree = self._expression()
        token = self._peek()
        if token.kind != "end":
            raise _error(token.position, f"unexpected {token.text!r}")
        return tree

    def _expression(self) -> Filter:
        operands = [self._disjunct()]
        while self._peek().kind == "OR":
            self._take()
            operands.append(self._disjunct())
        return operands[0] if len(operands) == 1 else Any(tuple(operands))

    def _disjunct(self) -> Filter:
        operands = [self._conjunct()]
        while self._peek().kind in ("AND", "NOT", "minus", "paren", "word") and (
            self._peek().text != ")"
        ):
            if self._peek().kind == "AND":
                self._take()
            operands.append(self._conjunct())
        return operands[0] if len(operands) == 1 else All(tuple(operands))

    def _conjunct(self) -> Filter:
        token = self._take()
        if token.kind in ("NOT", "minus"):
            return Not(self._conjunct())
        if token.text == "(":
            inner = self._expression()
            closing = self._take()
            if closing.text != ")":
                raise _error(closing.position, f"expected ')' to close the '(' at {token.position}")
            return inner
        if token.kind == "word":
            return self._term(token)
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        raise _error(token.position, f"expected a comparison such as `state = RUNNING`, {found}")

    def _term(self, name: _Token) -> Filter:
        field = name.text
        if field not in _FIELDS:
            raise _error(name.position, f"unknown field {field!r}; known: {', '.join(_FIELDS)}")
        op = self._take()
        if op.kind != "op":
            raise _error(op.position, f"expected an operator after {field!r}")
        value = self._take()
        if value.kind not in ("word", "string"):
            raise _error(value.position, f"expected a value after {field} {op.text}")
        if field == "topic":
            if op.text != ":":
                raise _error(op.position, 'topic takes `:` (contains), e.g. topic:"retrieval"')
            if not value.text.strip():
                raise _error(value.position, 'topic:"..." needs words')
            return Contains(value.text.strip().lower())
        if field in _ENUM_FIELDS:
            if op.text not in ("=", "!="):
                raise _error(op.position, f"{field} takes = or !=, not {op.text!r}")
            return Compare(field, op.text, _enum_value(field, value))
        if op.text == ":":
            raise _error(op.position, f"{field} takes =, !=, <, <=, > or >=, not ':'")
        return Compare(field, op.text, _timestamp(value))


def _enum_value(field: str, token: _Token) -> int:
    enum, prefix = _ENUM_FIELDS[field]
    name = token.text.upper().replace("-", "_")
    if not name.startswith(prefix):
        name = prefix + name
    if name not in enum.DESCRIPTOR.values_by_name or name.endswith("_UNSPECIFIED"):
        known = ", ".join(
            value.name.removeprefix(prefix)
            for value in enum.DESCRIPTOR.values
            if not value.name.endswith("_UNSPECIFIED")
        )
        raise _error(token.position, f"unknown {field} {token.text!r}; known: {known}")
    return int(enum.Value(name))


def _timestamp(token: _Token) -> int:
    try:
        moment = datetime.fromisoformat(token.text.replace("z", "Z"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _error(
            token.position,
            f"{token.text!r} is not an RFC 3339 time with a zone, e.g. 2026-01-31T12:00:00Z",
        )
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


def parse(text: str) -> Filter:
    """The filter `text` means (EVERYTHING when blank); INVALID_ARGUMENT naming the position."""
    if not text.strip():
        return EVERYTHING
    return _Parser(text).parse()


def _nanos(workflow: workflow_pb2.Workflow, field: str) -> int:
    stamp = workflow.create_time if field == "create_time" else workflow.update_time
    return int(stamp.ToNanoseconds())


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "=": int.__eq__,
    "!=": int.__ne__,
    "<": int.__lt__,
    "<=": int.__le__,
    ">": int.__gt__,
    ">=": int.__ge__,
}


def matches(tree: Filter, workflow: workflow_pb2.Workflow) -> bool:
    """Whether `workflow` passes the filter."""
    match tree:
        case Compare(field, op, value):
            actual = (
                int(getattr(workflow, field)) if field in _ENUM_FIELDS else _nanos(workflow, field)
            )
            return _COMPARE[op](actual, value)
        case Contains(words):
            return words in workflow.topic.lower()
        case Owner(tenant):
            return (workflow.tenant or DEFAULT_TENANT) == tenant
        case Not(operand):
            return not matches(operand, workflow)
        case All(operands):
            return all(matches(operand, workflow) for operand in operands)
        case Any(operands):
            return any(matches(operand, workflow) for operand in operands)
    raise AssertionError(tree)  # pragma: no cover


def to_sql(tree: Filter, columns: dict[str, str]) -> tuple[str, list[object]]:
    """A SQL condition, parenthesised so it can be ANDed with others, and its arguments;
    `columns` maps state, kind, create_time, update_time (integer nanoseconds), topic
    (lower-cased text) and tenant to column names."""
    match tree:
        case Compare(field, op, value):
            return f"{columns[field]} {_SQL_OPERATORS[op]} ?", [value]
        case Contains(words):
            return f"instr({columns['topic']}, ?) > 0", [words]
        case Owner(tenant):
            return f"{columns['tenant']} = ?", [tenant]
        case Not(operand):
            sql, args = to_sql(operand, columns)
            return f"NOT ({sql})", args
        case All(operands) | Any(operands):
            if not operands:
                return ("1" if isinstance(tree, All) else "0"), []
            parts = [to_sql(operand, columns) for operand in operands]
            joiner = " AND " if isinstance(tree, All) else " OR "
            return "(" + joiner.join(f"({sql})" for sql, _ in parts) + ")", [
                arg for _, args in parts for arg in args
            ]
    raise AssertionError(tree)  # pragma: no cover
