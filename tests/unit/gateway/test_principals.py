"""Keys files, principals and the method-scope table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

import ponder.embedding.v1.embedding_service_pb2
import ponder.library.v1.library_service_pb2
import ponder.reflection.v1.reflection_service_pb2
import ponder.research.v1.research_service_pb2
import ponder.workflow.v1.workflow_service_pb2  # noqa: F401  (their descriptors, registered)
from ponder_gateway.principals import (
    DEFAULT_SCOPES,
    DEFAULT_TENANT,
    METHOD_SCOPES,
    KeysFileError,
    Principal,
    Scope,
    hash_key,
    read_keys,
)
from ponder_gateway.settings import GatewaySettings
from ponder_runtime import SettingsError, load_settings


def test_json_lines_and_plain_hashes_are_both_read(tmp_path: Path) -> None:
    """A keys file mixing JSON entries, bare digests (with or without `name:`) and comments:
    JSON entries keep their tenant and scopes, bare ones get the default tenant and scopes;
    inline hashes from settings count too."""
    path = tmp_path / "keys"
    path.write_text(
        "# keys\n"
        + json.dumps(
            {"key_id": "ci", "sha256": hash_key("a"), "tenant": "team-a", "scopes": ["internal"]}
        )
        + f"\nbob:{hash_key('b').upper()}  # bob\n\n{hash_key('c')}\n"
    )
    entries = read_keys(path, [hash_key("d")])
    assert entries[hash_key("a")].tenant == "team-a"
    assert entries[hash_key("a")].scopes == {Scope.INTERNAL}
    assert entries[hash_key("b")].key_id == "bob"
    assert entries[hash_key("c")].key_id == hash_key("c")[:12]
    for plain in ("b", "c", "d"):
        assert entries[hash_key(plain)].tenant == DEFAULT_TENANT
        assert entries[hash_key(plain)].scopes == DEFAULT_SCOPES


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"key_id": "x", "sha256": "abc"}', "sha256"),
        ('{{"key_id": "x", "sha256": "{}", "scopes": ["root"]}}'.format(hash_key("k")), "scopes"),
        ('{{"key_id": "x", "sha256": "{}", "owner": "me"}}'.format(hash_key("k")), "owner"),
        ("not-a-digest", "not a SHA-256 hex digest"),
        ('{"key_id": "x", ', "Expecting"),
    ],
    ids=["short-digest", "unknown-scope", "unknown-field", "plain-garbage", "broken-json"],
)
def test_a_bad_line_is_refused_naming_the_line(tmp_path: Path, line: str, reason: str) -> None:
    """Each malformed entry stops the gateway with the file, the line number and what is
    wrong."""
    path = tmp_path / "keys"
    path.write_text(f"# header\n{line}\n")
    with pytest.raises(KeysFileError) as caught:
        read_keys(path, [])
    assert str(caught.value).startswith(f"{path}:2: ")
    assert reason in str(caught.value)


def test_a_key_listed_twice_is_refused(tmp_path: Path) -> None:
    """The same hash twice (with different tenants) is an error, not a silent choice."""
    path = tmp_path / "keys"
    path.write_text(f"{hash_key('a')}\n" + json.dumps({"key_id": "a", "sha256": hash_key("a")}))
    with pytest.raises(KeysFileError, match="listed twice"):
        read_keys(path, [])


def test_the_table_covers_every_method_of_every_ponder_service() -> None:
    """METHOD_SCOPES names every method of the five services, each with at least one scope;
    forwarded methods all need `internal`, library methods `library.read` or `library.write`;
    a principal misses exactly the scopes it lacks and
    an unknown method is refused (None)."""
    pool = descriptor_pool.Default()
    methods = {
        f"/{service.full_name}/{method.name}"
        for name in (
            "ponder.workflow.v1.WorkflowService",
            "ponder.library.v1.LibraryService",
            "ponder.research.v1.ResearchService",
            "ponder.reflection.v1.ReflectionService",
            "ponder.embedding.v1.EmbeddingService",
        )
        for service in [pool.FindServiceByName(name)]
        for method in service.methods
    }
    assert set(METHOD_SCOPES) == methods
    assert all(METHOD_SCOPES.values())
    for method, scopes in METHOD_SCOPES.items():
        if method.startswith("/ponder.library."):
            assert scopes <= {Scope.LIBRARY_READ, Scope.LIBRARY_WRITE}, method
        elif not method.startswith("/ponder.workflow."):
            assert Scope.INTERNAL in scopes, method
    reader = Principal("a", "k", frozenset({Scope.WORKFLOWS_READ}))
    assert reader.missing("/ponder.workflow.v1.WorkflowService/GetWorkflow") == frozenset()
    assert reader.missing("/ponder.workflow.v1.WorkflowService/CancelWorkflow") == frozenset(
        {Scope.WORKFLOWS_CANCEL}
    )
    assert reader.missing("/ponder.workflow.v1.WorkflowService/DeleteEverything") is None
    assert reader.owns("a")
    assert not reader.owns("b")
    assert not reader.owns("")
    assert Principal(DEFAULT_TENANT, "k", frozenset()).owns("")  # records older than tenants
    assert Principal("ops", "k", frozenset({Scope.ADMIN})).owns("b")


def test_a_bad_keys_file_is_a_settings_error_naming_the_variable(tmp_path: Path) -> None:
    """PONDER_GATEWAY_API_KEYS_FILE with a malformed line, or missing, stops the gateway at
    start-up like any bad setting: the message names the variable and the line."""
    path = tmp_path / "keys"
    path.write_text('{"key_id": "x", "sha256": "abc"}\n')
    for keys_file in (path, tmp_path / "missing"):
        with pytest.raises(SettingsError) as caught:
            load_settings(GatewaySettings, api_keys_file=keys_file)
        assert "PONDER_GATEWAY_API_KEYS_FILE" in str(caught.value)
    with pytest.raises(SettingsError, match=f"{path}:1: sha256"):
        load_settings(GatewaySettings, api_keys_file=path)
