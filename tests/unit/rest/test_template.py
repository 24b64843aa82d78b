"""google.api.http path templates: parsing, matching, and decoding per http.proto's rules."""

from __future__ import annotations

import pytest

from ponder_rest.template import PathTemplate, TemplateError, Variable, parse_template


# template, variables (field path, pattern, multi-segment), verb, literal count, has `**`,
# OpenAPI path
PARSED = [
    (
        "/v1/messages/{message_id}",
        [("message_id", "*", False)],
        "",
        2,
        False,
        "/v1/messages/{message_id}",
    ),
    ("/v1/{name=*}", [("name", "*", False)], "", 1, False, "/v1/{name}"),
    ("/v1/{name=messages/*}", [("name", "messages/*", True)], "", 2, False, "/v1/{name}"),
    (
        "/v1/{name=shelves/*/books/*}:archive",
        [("name", "shelves/*/books/*", True)],
        "archive",
        3,
        False,
        "/v1/{name}:archive",
    ),
    ("/v1/{path=files/**}", [("path", "files/**", True)], "", 2, True, "/v1/{path}"),
    ("/v1/{path=**}:stat", [("path", "**", True)], "stat", 1, True, "/v1/{path}:stat"),
    (
        "/v1/shelves/{book.shelf_id}/books/{book.id}",
        [("book.shelf_id", "*", False), ("book.id", "*", False)],
        "",
        3,
        False,
        "/v1/shelves/{book.shelf_id}/books/{book.id}",
    ),
    ("/v1/*/books/{id}", [("id", "*", False)], "", 2, False, "/v1/*/books/{id}"),
    ("/v1/{kind=fixed}", [("kind", "fixed", False)], "", 2, False, "/v1/{kind}"),
    ("/v1/cache:lookup", [], "lookup", 2, False, "/v1/cache:lookup"),
    ("/v1/**", [], "", 1, True, "/v1/**"),
    ("/v1/a-b.c_d~e%20f", [], "", 2, False, "/v1/a-b.c_d~e%20f"),
]


@pytest.mark.parametrize("case", PARSED, ids=[case[0] for case in PARSED])
def test_parse(case: tuple[str, list[tuple[str, str, bool]], str, int, bool, str]):
    """Variables with their patterns, the verb, and what the router ranks templates by."""
    source, variables, verb, literals, double, openapi = case
    template = parse_template(source)
    assert template.source == source
    assert template.variables == tuple(Variable(*v) for v in variables)
    assert template.verb == verb
    assert template.literal_count == literals
    assert template.has_double_wildcard is double
    assert template.openapi_path == openapi


# template, raw path, bindings (None: no match)
MATCHES = [
    ("/v1/messages/{message_id}", "/v1/messages/123456", {"message_id": "123456"}),
    ("/v1/messages/{message_id}", "/v1/messages/123456/x", None),
    ("/v1/messages/{message_id}", "/v1/messages/", None),
    ("/v1/messages/{message_id}", "/v1/messages", None),
    ("/v1/messages/{message_id}", "/v1/Messages/1", None),  # literals are case-sensitive
    ("/v1/messages/{message_id}", "/v1/messages/1/", None),  # no trailing slash
    ("/v1/messages/{message_id}", "v1/messages/1", None),
    ("/v1/{name=messages/*}", "/v1/messages/123456", {"name": "messages/123456"}),
    (
        "/v1/{name=shelves/*/books/*}",
        "/v1/shelves/s1/books/b1",
        {"name": "shelves/s1/books/b1"},
    ),
    ("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books", None),
    ("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books/b1/x", None),
    ("/v1/{name=shelves/*/books/*}", "/v1/archives/a1/books/b1", None),
    ("/v1/{name=shelves/*/books/*}", "/v1/shelves//books/b1", None),
    ("/v1/{path=files/**}", "/v1/files/a", {"path": "files/a"}),
    ("/v1/{path=files/**}", "/v1/files/a/b/c.txt", {"path": "files/a/b/c.txt"}),
    # `**` takes one or more segments here (http.proto says zero or more).
    ("/v1/{path=files/**}", "/v1/files", None),
    ("/v1/{path=files/**}", "/v1/files/", None),
    ("/v1/{path=files/**}", "/v1/files/a//b", None),
    ("/v1/{path=**}", "/v1/a/b", {"path": "a/b"}),
    ("/v1/**", "/v1/a/b", {}),
    ("/v1/*/books/{id}", "/v1/s1/books/7", {"id": "7"}),
    ("/v1/*/books/{id}", "/v1/s1/s2/books/7", None),
    (
        "/v1/shelves/{book.shelf_id}/books/{book.id}",
        "/v1/shelves/s1/books/b1",
        {"book.shelf_id": "s1", "book.id": "b1"},
    ),
    ("/v1/{kind=fixed}", "/v1/fixed", {"kind": "fixed"}),
    ("/v1/{kind=fixed}", "/v1/other", None),
    # Custom verbs.
    ("/v1/cache:lookup", "/v1/cache:lookup", {}),
    ("/v1/cache:lookup", "/v1/cache", None),
    ("/v1/cache:lookup", "/v1/cache:store", None),
    ("/v1/{name=shelves/*}:archive", "/v1/shelves/s1:archive", {"name": "shelves/s1"}),
    ("/v1/{name=shelves/*}:archive", "/v1/shelves/s1", None),
    ("/v1/{name=shelves/*}:archive", "/v1/shelves/s1:restore", None),
    ("/v1/{name=shelves/*}:archive", "/v1/shelves/s1:archive/x", None),
    ("/v1/{name=shelves/*}:archive", "/v1/shelves/:archive", None),
    ("/v1/{path=files/**}:stat", "/v1/files/a:b/c:stat", {"path": "files/a:b/c"}),
    # Without a verb in the template, a colon is part of the last segment.
    ("/v1/{name=shelves/*}", "/v1/shelves/s1:archive", {"name": "shelves/s1:archive"}),
    ("/v1/echoes/{name}", "/v1/echoes/a:b", {"name": "a:b"}),
]


@pytest.mark.parametrize(
    ("source", "raw_path", "expected"), MATCHES, ids=[f"{s} {p}" for s, p, _ in MATCHES]
)
def test_match(source: str, raw_path: str, expected: dict[str, str] | None):
    """Matching is exact (full path); `*` is one segment, `**` the rest of the path."""
    assert parse_template(source).match(raw_path) == expected


# template, raw path, bindings: http.proto's escaping rules. A one-segment variable is fully
# percent-decoded, and holds no escaped slash (grpc-gateway unescapes before matching: that is
# two segments, no match); a multi-segment one is decoded except %2F and %2f.
DECODED = [
    ("/v1/echoes/{name}", "/v1/echoes/a%20b", {"name": "a b"}),
    ("/v1/echoes/{name}", "/v1/echoes/a%2Fb", None),
    ("/v1/echoes/{name}", "/v1/echoes/a%2fb", None),
    ("/v1/echoes/{name}", "/v1/echoes/caf%C3%A9", {"name": "café"}),
    ("/v1/echoes/{name}", "/v1/echoes/100%25", {"name": "100%"}),
    ("/v1/echoes/{name}", "/v1/echoes/%2525", {"name": "%25"}),  # decoded once only
    ("/v1/echoes/{name}", "/v1/echoes/a+b", {"name": "a+b"}),  # '+' is no space in a path
    ("/v1/echoes/{name}", "/v1/echoes/%7Bx%7D%3A%3F%23", {"name": "{x}:?#"}),
    ("/v1/echoes/{name}", "/v1/echoes/50%", {"name": "50%"}),  # a stray '%' stays
    ("/v1/{name=*}", "/v1/a%2Fb", None),
    ("/v1/{path=files/**}", "/v1/files/a%2Fb/c", {"path": "files/a%2Fb/c"}),
    ("/v1/{path=files/**}", "/v1/files/a%2fb", {"path": "files/a%2fb"}),
    ("/v1/{path=files/**}", "/v1/files/%2F%2F", {"path": "files/%2F%2F"}),
    ("/v1/{path=files/**}", "/v1/files/a%20b/c%3Ad", {"path": "files/a b/c:d"}),
    ("/v1/{path=files/**}", "/v1/files/caf%C3%A9/%25", {"path": "files/café/%"}),
    (
        "/v1/{name=shelves/*/books/*}",
        "/v1/shelves/s%2F1/books/b%201",
        {"name": "shelves/s%2F1/books/b 1"},
    ),
    (
        "/v1/shelves/{book.shelf_id}/books/{book.id}",
        "/v1/shelves/s%3A1/books/b%201",
        {"book.shelf_id": "s:1", "book.id": "b 1"},
    ),
    ("/v1/shelves/{book.shelf_id}/books/{book.id}", "/v1/shelves/s%2F1/books/b%201", None),
    # An encoded slash never splits a segment, so it cannot stand in for a literal's '/'.
    ("/v1/{name=shelves/*}", "/v1/shelves%2Fs1", None),
    ("/v1/messages/{message_id}", "/v1/messages%2F1", None),
]


@pytest.mark.parametrize(
    ("source", "raw_path", "expected"), DECODED, ids=[f"{s} {p}" for s, p, _ in DECODED]
)
def test_decoding(source: str, raw_path: str, expected: dict[str, str] | None):
    """Bound values are decoded as http.proto says for one- and multi-segment variables."""
    assert parse_template(source).match(raw_path) == expected


def _error(source: str, problem: str, position: int) -> tuple[str, str]:
    return source, f"invalid path template {source!r}: {problem} at position {position}"


EXPECTED_SEGMENT = "expected a literal segment, '*', '**' or a {variable}"
ERRORS = [
    _error("", "a template must start with '/'", 0),
    _error("v1/messages", "a template must start with '/'", 0),
    _error("/", EXPECTED_SEGMENT, 1),
    _error("/v1/", EXPECTED_SEGMENT, 4),
    _error("/v1//messages", EXPECTED_SEGMENT, 4),
    _error("/v1:", EXPECTED_SEGMENT, 4),
    _error("/v1/cache:", EXPECTED_SEGMENT, 10),
    _error("/v1/{x=}", EXPECTED_SEGMENT, 7),
    _error("/v1/{x=a/}", EXPECTED_SEGMENT, 9),
    _error("/v1/cache lookup", "unexpected ' '", 9),
    _error("/v1/x?y=1", "unexpected '?'", 5),
    _error("/v1/*x", "unexpected 'x'", 5),
    _error("/v1/***", "unexpected '*'", 6),
    _error("/v1/x}", "unexpected '}'", 5),
    _error("/v1/{x=a}b", "unexpected 'b'", 9),
    _error("/v1/cache:a:b", "unexpected ':'", 11),
    _error("/v1/cache:a/b", "unexpected '/'", 11),
    _error("/v1/{}", "expected a field path inside '{}'", 5),
    _error("/v1/{1x}", "expected a field path inside '{}'", 5),
    _error("/v1/{=x}", "expected a field path inside '{}'", 5),
    _error("/v1/{x", "expected '}'", 6),
    _error("/v1/{x.}", "expected '}'", 6),
    _error("/v1/{x:y}", "expected '}'", 6),
    _error("/v1/{x=a/{y}}", "variables cannot be nested", 9),
    _error("/v1/{x={y}}", "variables cannot be nested", 7),
    _error("/v1/{a}/{a}", "field 'a' is bound twice", 11),
    _error("/v1/{a.b}/x/{a.b=*}", "field 'a.b' is bound twice", 19),
    _error("/v1/**/x", "'**' must be the last segment", 7),
    _error("/v1/{p=**}/x", "'**' must be the last segment", 11),
    _error("/v1/{p=**}/**", "'**' must be the last segment", 11),
    _error("/v1/{p=a/**/b}", "'**' must be the last segment", 12),
]


@pytest.mark.parametrize(("source", "message"), ERRORS, ids=[s for s, _ in ERRORS])
def test_errors(source: str, message: str):
    """Every grammar violation is a TemplateError (a ValueError) saying what and where."""
    with pytest.raises(TemplateError) as caught:
        parse_template(source)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_template_is_a_value():
    """Parsing is deterministic: the same source gives equal (and hashable) templates."""
    first, second = parse_template("/v1/{name=shelves/*}"), parse_template("/v1/{name=shelves/*}")
    assert first == second
    assert isinstance(first, PathTemplate)
    assert len({first, second}) == 1
