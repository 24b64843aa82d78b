"""Routes built from google.api.http options, the router, and start-up errors for bad rules."""

from __future__ import annotations

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor

from ponder_rest.routes import (
    BadPathError,
    MethodNotAllowedError,
    NoRouteError,
    Route,
    Router,
    build_routes,
    routes_of,
)
from ponder_rest.template import TemplateError
from ponder_testing.transcoding.v1 import transcoding_pb2 as pb


SERVICE = pb.DESCRIPTOR.services_by_name["TranscodingService"]
ROUTES = build_routes([SERVICE])
ROUTER = Router(ROUTES)


def _route(operation_id: str) -> Route:
    return next(r for r in ROUTES if r.operation_id == operation_id)


# operation id, HTTP method, path template, body, response_body, binding, gRPC method
EXPECTED_ROUTES = [
    ("TranscodingService_Echo", "GET", "/v1/echoes/{name}", "", "", 0, "Echo"),
    ("TranscodingService_EchoQuery", "GET", "/v1/query", "", "", 0, "EchoQuery"),
    ("TranscodingService_EchoQuery_1", "POST", "/v1/query", "*", "", 1, "EchoQuery"),
    (
        "TranscodingService_GetBook",
        "GET",
        "/v1/{name=shelves/*/books/*}",
        "",
        "book",
        0,
        "GetBook",
    ),
    (
        "TranscodingService_GetBook_1",
        "GET",
        "/v1/{name=archives/*/books/*}",
        "",
        "book",
        1,
        "GetBook",
    ),
    (
        "TranscodingService_CreateBook",
        "POST",
        "/v1/{parent=shelves/*}/books",
        "book",
        "",
        0,
        "CreateBook",
    ),
    (
        "TranscodingService_UpdateBook",
        "PATCH",
        "/v1/shelves/{book.shelf_id}/books/{book.id}",
        "book",
        "",
        0,
        "UpdateBook",
    ),
    (
        "TranscodingService_UpdateBook_1",
        "PUT",
        "/v1/shelves/{book.shelf_id}/books/{book.id}",
        "*",
        "",
        1,
        "UpdateBook",
    ),
    (
        "TranscodingService_DeleteBook",
        "DELETE",
        "/v1/{name=shelves/*/books/*}",
        "",
        "",
        0,
        "DeleteBook",
    ),
    (
        "TranscodingService_ArchiveBook",
        "POST",
        "/v1/{name=shelves/*/books/*}:archive",
        "*",
        "",
        0,
        "ArchiveBook",
    ),
    ("TranscodingService_GetFile", "GET", "/v1/{path=files/**}", "", "", 0, "GetFile"),
    ("TranscodingService_GetFile_1", "HEAD", "/v1/{path=files/**}", "", "", 1, "GetFile"),
    ("TranscodingService_StatFile", "GET", "/v1/{path=files/**}:stat", "", "", 0, "StatFile"),
    ("TranscodingService_StreamEchoes", "GET", "/v1/echoes:stream", "", "", 0, "StreamEchoes"),
    ("TranscodingService_Fail", "GET", "/v1/errors/{code}", "", "", 0, "Fail"),
    (
        "TranscodingService_UploadFile",
        "POST",
        "/v1/{shelf=shelves/*}/files",
        "file",
        "",
        0,
        "UploadFile",
    ),
]


def test_routes_of_the_test_proto():
    """One route per HttpRule, in declaration order, additional bindings suffixed _1."""
    actual = [
        (
            r.operation_id,
            r.http_method,
            r.template.source,
            r.body,
            r.response_body,
            r.binding,
            r.method.name,
        )
        for r in ROUTES
    ]
    assert actual == EXPECTED_ROUTES


def test_unannotated_method_has_no_route():
    """A method without google.api.http (Ping) stays gRPC-only."""
    assert routes_of(SERVICE.methods_by_name["Ping"]) == []
    assert "Ping" not in {r.method.name for r in ROUTES}


def test_route_knows_its_grpc_method():
    """gRPC path, streaming flag and message classes come from the method descriptor."""
    get_book = _route("TranscodingService_GetBook_1")
    assert get_book.grpc_path == "/ponder_testing.transcoding.v1.TranscodingService/GetBook"
    assert get_book.request_class() is pb.GetBookRequest
    assert get_book.response_class() is pb.GetBookResponse
    assert [r.operation_id for r in ROUTES if r.server_streaming] == [
        "TranscodingService_StreamEchoes"
    ]


def test_operation_ids_are_unique():
    """Every route has its own operation id (OpenAPI requires it)."""
    ids = [r.operation_id for r in ROUTES]
    assert len(set(ids)) == len(ids)


# HTTP method, raw path, operation id, path bindings
MATCHED = [
    ("GET", "/v1/echoes/hello", "TranscodingService_Echo", {"name": "hello"}),
    ("GET", "/v1/echoes/a%20b", "TranscodingService_Echo", {"name": "a b"}),
    ("GET", "/v1/echoes:stream", "TranscodingService_StreamEchoes", {}),
    ("GET", "/v1/query", "TranscodingService_EchoQuery", {}),
    ("POST", "/v1/query", "TranscodingService_EchoQuery_1", {}),
    (
        "GET",
        "/v1/shelves/s1/books/b1",
        "TranscodingService_GetBook",
        {"name": "shelves/s1/books/b1"},
    ),
    (
        "GET",
        "/v1/archives/a1/books/b1",
        "TranscodingService_GetBook_1",
        {"name": "archives/a1/books/b1"},
    ),
    (
        "DELETE",
        "/v1/shelves/s1/books/b1",
        "TranscodingService_DeleteBook",
        {"name": "shelves/s1/books/b1"},
    ),
    (
        "PATCH",
        "/v1/shelves/s1/books/b1",
        "TranscodingService_UpdateBook",
        {"book.shelf_id": "s1", "book.id": "b1"},
    ),
    (
        "PUT",
        "/v1/shelves/s1/books/b%201",
        "TranscodingService_UpdateBook_1",
        {"book.shelf_id": "s1", "book.id": "b 1"},
    ),
    ("POST", "/v1/shelves/s1/books", "TranscodingService_CreateBook", {"parent": "shelves/s1"}),
    (
        "POST",
        "/v1/shelves/s1/books/b1:archive",
        "TranscodingService_ArchiveBook",
        {"name": "shelves/s1/books/b1"},
    ),
    ("GET", "/v1/files/a", "TranscodingService_GetFile", {"path": "files/a"}),
    (
        "GET",
        "/v1/files/a/b%2Fc/d.txt",
        "TranscodingService_GetFile",
        {"path": "files/a/b%2Fc/d.txt"},
    ),
    ("HEAD", "/v1/files/a/b", "TranscodingService_GetFile_1", {"path": "files/a/b"}),
    # The verb route wins over the `**` route that would take ":stat" into the path.
    ("GET", "/v1/files/a/b:stat", "TranscodingService_StatFile", {"path": "files/a/b"}),
    ("GET", "/v1/files/a:b/c", "TranscodingService_GetFile", {"path": "files/a:b/c"}),
    ("GET", "/v1/errors/NOT_FOUND", "TranscodingService_Fail", {"code": "NOT_FOUND"}),
    # Another method's verb is only part of the last segment (as in grpc-gateway).
    (
        "GET",
        "/v1/shelves/s1/books/b1:archive",
        "TranscodingService_GetBook",
        {"name": "shelves/s1/books/b1:archive"},
    ),
]


@pytest.mark.parametrize(
    ("http_method", "raw_path", "operation_id", "bindings"),
    MATCHED,
    ids=[f"{m} {p}" for m, p, _, _ in MATCHED],
)
def test_router_matches(
    http_method: str, raw_path: str, operation_id: str, bindings: dict[str, str]
):
    """The router finds the route and its decoded path bindings."""
    route, bound = ROUTER.match(http_method, raw_path)
    assert route.operation_id == operation_id
    assert bound == bindings


NOT_FOUND = [
    "/",
    "/v2/query",
    "/v1/query/",
    "/v1/echoes",
    "/v1/echoes/a/b",
    "/v1/shelves/s1",
    "/v1/shelves/s1/books/b1/pages",
    "/v1/files",
    "/v1/shelves%2Fs1/books/b1",
    "/v1/echoes/a%2Fb",  # an escaped slash in a one-segment variable is two segments
    "/v1/echoes/a%2fb%20c",
    "/v1/errors",
]


@pytest.mark.parametrize("raw_path", NOT_FOUND)
@pytest.mark.parametrize("http_method", ["GET", "POST"])
def test_no_route_is_404(http_method: str, raw_path: str):
    """A path no template matches, whatever the method, is NoRouteError (HTTP 404)."""
    with pytest.raises(NoRouteError) as caught:
        ROUTER.match(http_method, raw_path)
    assert caught.value.args == (raw_path,)
    assert not isinstance(caught.value, MethodNotAllowedError)


# HTTP method, raw path, the methods allowed there (sorted)
NOT_ALLOWED = [
    ("DELETE", "/v1/query", ["GET", "POST"]),
    ("POST", "/v1/shelves/s1/books/b1", ["DELETE", "GET", "PATCH", "PUT"]),
    ("GET", "/v1/shelves/s1/books", ["POST"]),
    ("DELETE", "/v1/files/a/b", ["GET", "HEAD"]),
    ("POST", "/v1/files/a:stat", ["GET"]),  # the :stat path (HEAD is files/** alone)
    ("POST", "/v1/echoes:stream", ["GET"]),
    # the `:archive` path: only its own methods, not those of `{name=shelves/*/books/*}`
    # (which would also take "b1:archive" as a name), as the OpenAPI document has it
    ("HEAD", "/v1/shelves/s1/books/b1:archive", ["POST"]),
    ("get", "/v1/query", ["GET", "POST"]),  # methods are compared as given (upper case)
]


@pytest.mark.parametrize(
    ("http_method", "raw_path", "allowed"),
    NOT_ALLOWED,
    ids=[f"{m} {p}" for m, p, _ in NOT_ALLOWED],
)
def test_wrong_method_is_405_with_allowed_methods(
    http_method: str, raw_path: str, allowed: list[str]
):
    """A path some route matches, but not with this method: MethodNotAllowedError (405)."""
    with pytest.raises(MethodNotAllowedError) as caught:
        ROUTER.match(http_method, raw_path)
    assert caught.value.allowed == allowed
    assert str(caught.value) == ", ".join(allowed)


def test_paths_group_routes_by_openapi_path():
    """Router.paths lists every route once, under its template with patterns dropped."""
    paths = ROUTER.paths
    assert sorted(r.operation_id for routes in paths.values() for r in routes) == sorted(
        r.operation_id for r in ROUTES
    )
    assert [r.operation_id for r in paths["/v1/{path}"]] == [
        "TranscodingService_GetFile",
        "TranscodingService_GetFile_1",
    ]
    assert [r.operation_id for r in paths["/v1/{name}:archive"]] == [
        "TranscodingService_ArchiveBook"
    ]
    assert [r.operation_id for r in paths["/v1/shelves/{book.shelf_id}/books/{book.id}"]] == [
        "TranscodingService_UpdateBook",
        "TranscodingService_UpdateBook_1",
    ]


# Building bad (and synthetic) services: a fresh pool per service, so each test's file is
# independent of the generated modules and of the other tests.

_PACKAGE = "bad.v1"
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED


def _file_proto(file: FileDescriptor) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    return proto


def _message(
    file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, str]]
) -> None:
    """Add message `name` with (field name, label, type: "string" or a message name)."""
    message = file.message_type.add(name=name)
    for number, (field_name, label, kind) in enumerate(fields, start=1):
        field = message.field.add(name=field_name, number=number, label=label)
        if kind == "string":
            field.type = _STRING
        else:
            field.type, field.type_name = _MESSAGE, f".{_PACKAGE}.{kind}"


def _service(
    *rules: http_pb2.HttpRule | None,
    client_streaming: bool = False,
) -> ServiceDescriptor:
    """Service bad.v1.BadService: one method per rule (Call, Call2, ...; None: no option)
    taking Request {id, tags[], inner: Inner {id}, items[]: Inner} and returning Response
    {result}."""
    pool = descriptor_pool.DescriptorPool()
    for module in (descriptor_pb2, http_pb2, annotations_pb2):
        pool.Add(_file_proto(module.DESCRIPTOR))
    file = descriptor_pb2.FileDescriptorProto(
        name="bad/v1/bad.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    _message(file, "Inner", [("id", _OPTIONAL, "string")])
    _message(
        file,
        "Request",
        [
            ("id", _OPTIONAL, "string"),
            ("tags", _REPEATED, "string"),
            ("inner", _OPTIONAL, "Inner"),
            ("items", _REPEATED, "Inner"),
        ],
    )
    _message(file, "Response", [("result", _OPTIONAL, "string")])
    service = file.service.add(name="BadService")
    for index, rule in enumerate(rules, start=1):
        method = service.method.add(
            name="Call" if index == 1 else f"Call{index}",
            input_type=f".{_PACKAGE}.Request",
            output_type=f".{_PACKAGE}.Response",
            client_streaming=client_streaming,
        )
        if rule is not None:
            method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    pool.Add(file)
    return pool.FindServiceByName(f"{_PACKAGE}.BadService")


def _rule(**fields: object) -> http_pb2.HttpRule:
    return http_pb2.HttpRule(**fields)


CALL = "bad.v1.BadService.Call"
# rule(s), expected TemplateError message
BAD_RULES: list[tuple[str, list[http_pb2.HttpRule], str]] = [
    ("no pattern", [_rule(body="*")], f"{CALL}: HttpRule has no pattern"),
    (
        "bad template",
        [_rule(get="v1/x")],
        f"{CALL}: invalid path template 'v1/x': a template must start with '/' at position 0",
    ),
    (
        "bad custom template",
        [_rule(custom=http_pb2.CustomHttpPattern(kind="HEAD", path="/v1/{x"))],
        f"{CALL}: invalid path template '/v1/{{x': expected '}}' at position 6",
    ),
    (
        "unknown path variable",
        [_rule(get="/v1/{nope}")],
        f"{CALL}: path variable {{nope}}: no field 'nope' in the request",
    ),
    (
        "unknown nested path variable",
        [_rule(get="/v1/{inner.nope}")],
        f"{CALL}: path variable {{inner.nope}}: no field 'nope' in the request",
    ),
    (
        "path variable through a scalar",
        [_rule(get="/v1/{id.x}")],
        f"{CALL}: path variable {{id.x}}: no field 'x' in the request",
    ),
    (
        "path variable through a repeated field",
        [_rule(get="/v1/{items.id}")],
        f"{CALL}: path variable {{items.id}}: 'items' is repeated",
    ),
    (
        "repeated path variable",
        [_rule(get="/v1/{tags}")],
        f"{CALL}: path variable {{tags}}: must name a non-repeated primitive field",
    ),
    (
        "message path variable",
        [_rule(get="/v1/{inner}")],
        f"{CALL}: path variable {{inner}}: must name a non-repeated primitive field",
    ),
    (
        "unknown body field",
        [_rule(post="/v1/x", body="nope")],
        f"{CALL}: body field 'nope' is not in the request",
    ),
    (
        "nested body field",
        [_rule(post="/v1/x", body="inner.id")],
        f"{CALL}: body field 'inner.id' is not in the request",
    ),
    (
        "unknown response_body field",
        [_rule(get="/v1/x", response_body="nope")],
        f"{CALL}: response_body 'nope' is not in the response",
    ),
    (
        "bad additional binding",
        [_rule(get="/v1/x", additional_bindings=[_rule(get="/v1/{nope}")])],
        f"{CALL}: path variable {{nope}}: no field 'nope' in the request",
    ),
    (
        "nested additional bindings",
        [
            _rule(
                get="/v1/x",
                additional_bindings=[_rule(get="/v1/y", additional_bindings=[_rule(get="/v1/z")])],
            )
        ],
        f"{CALL}: additional_bindings cannot be nested",
    ),
    (
        "same method and path twice in one method",
        [_rule(get="/v1/x", additional_bindings=[_rule(get="/v1/x")])],
        f"{CALL} and {CALL} both bind GET /v1/x",
    ),
    (
        "same method and path in two methods",
        [_rule(get="/v1/{id}"), _rule(get="/v1/{inner.id}")],
        f"{CALL}2 and {CALL} both bind GET /v1/{{inner.id}}",
    ),
    (
        "same verb route in two methods",
        [_rule(post="/v1/{id}:go", body="*"), _rule(post="/v1/{inner.id}:go")],
        f"{CALL}2 and {CALL} both bind POST /v1/{{inner.id}}:go",
    ),
]


@pytest.mark.parametrize(
    ("rules", "message"),
    [(rules, message) for _, rules, message in BAD_RULES],
    ids=[name for name, _, _ in BAD_RULES],
)
def test_bad_rules_fail_at_start_up(rules: list[http_pb2.HttpRule], message: str):
    """A bad annotation fails build_routes with a TemplateError naming the method."""
    service = _service(*rules)
    with pytest.raises(TemplateError) as caught:
        build_routes([service])
    assert str(caught.value) == message


def test_client_streaming_fails_at_start_up():
    """A client-streaming method cannot be bound to HTTP."""
    service = _service(_rule(post="/v1/x", body="*"), client_streaming=True)
    with pytest.raises(TemplateError) as caught:
        build_routes([service])
    assert str(caught.value) == f"{CALL}: client streaming is not supported over HTTP"


def test_client_streaming_without_http_option_is_ignored():
    """A client-streaming method without google.api.http is simply not routed."""
    assert build_routes([_service(None, client_streaming=True)]) == []


def test_good_synthetic_rules():
    """Custom kinds are upper-cased; one path may take several methods; a nested body-less
    path variable and `response_body` are accepted."""
    service = _service(
        _rule(custom=http_pb2.CustomHttpPattern(kind="options", path="/v1/{id}")),
        _rule(
            get="/v1/{id}",
            response_body="result",
            additional_bindings=[_rule(post="/v1/{id}", body="inner")],
        ),
        _rule(delete="/v1/things/{inner.id}"),
    )
    routes = build_routes([service])
    assert [(r.operation_id, r.http_method, r.template.source, r.body) for r in routes] == [
        ("BadService_Call", "OPTIONS", "/v1/{id}", ""),
        ("BadService_Call2", "GET", "/v1/{id}", ""),
        ("BadService_Call2_1", "POST", "/v1/{id}", "inner"),
        ("BadService_Call3", "DELETE", "/v1/things/{inner.id}", ""),
    ]
    assert routes[1].response_body == "result"


def test_services_are_routed_together():
    """build_routes takes several services; their routes keep service order."""
    other = _service(_rule(get="/v1/other/{id}"))
    routes = build_routes([SERVICE, other])
    assert routes[: len(ROUTES)] == ROUTES
    assert [r.operation_id for r in routes[len(ROUTES) :]] == ["BadService_Call"]


# Precedence: a custom verb first, then more literal segments, then no `**`; declaration
# order does not matter.
PRECEDENCE_RULES = [
    _rule(get="/v1/{id=things/**}"),
    _rule(get="/v1/{id=things/*}"),
    _rule(get="/v1/things/special"),
    _rule(get="/v1/{id=things/*}:watch"),
    _rule(get="/v1/{id=**}"),
]
# raw path, the method (Call<n>) that serves it
PRECEDENCE = [
    ("/v1/things/special", "Call3"),  # three literals beat two
    ("/v1/things/x", "Call2"),  # no `**` beats `**`
    ("/v1/things/x/y", "Call"),  # only `things/**` takes two segments after things/
    ("/v1/things/x:watch", "Call4"),  # the verb first
    ("/v1/things/special:watch", "Call4"),  # the verb before more literals
    ("/v1/things/x/y:watch", "Call"),  # `{id=things/*}:watch` needs one segment
    ("/v1/other/x", "Call5"),  # only the catch-all
]


@pytest.mark.parametrize("reverse", [False, True], ids=["declared", "reversed"])
@pytest.mark.parametrize(("raw_path", "method"), PRECEDENCE, ids=[p for p, _ in PRECEDENCE])
def test_router_precedence(raw_path: str, method: str, reverse: bool):
    """The most specific template wins, whatever the order the routes are given in."""
    routes = build_routes([_service(*PRECEDENCE_RULES)])
    router = Router(list(reversed(routes)) if reverse else routes)
    route, _ = router.match("GET", raw_path)
    assert route.method.name == method


def test_405_lists_each_allowed_method_once():
    """Two routes of one method on a path (GET twice via precedence) list GET once."""
    routes = build_routes([_service(*PRECEDENCE_RULES)])
    with pytest.raises(MethodNotAllowedError) as caught:
        Router(routes).match("POST", "/v1/things/x")
    assert caught.value.allowed == ["GET"]


@pytest.mark.parametrize("raw_path", ["/v1/echoes/%zz", "/v1/echoes/a%2", "/v1/files/a/%G1/b"])
def test_a_malformed_escape_is_a_bad_path(raw_path: str):
    """`%` not followed by two hex digits is BadPathError (HTTP 400), never passed through."""
    with pytest.raises(BadPathError) as caught:
        ROUTER.match("GET", raw_path)
    assert "malformed percent escape" in str(caught.value)
