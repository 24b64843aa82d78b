"""API keys and keys files for gateways started by tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ponder_gateway.access import hash_key
from ponder_gateway.principals import Scope


KEY = "pk-test-0123456789abcdef"


def key_line(key: str, *, key_id: str, tenant: str = "default", scopes: Iterable[str] = ()) -> str:
    """One JSON line of a keys file (principals.py)."""
    entry = {"key_id": key_id, "sha256": hash_key(key), "tenant": tenant, "scopes": sorted(scopes)}
    return json.dumps(entry)


def keys_file(path: Path, *lines: str) -> Path:
    """A keys file with these lines."""
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def all_scopes_key(tmp_path: Path, key: str = KEY) -> Path:
    """A keys file giving `key` every scope (tenant `default`)."""
    return keys_file(tmp_path / "all-scopes.keys", key_line(key, key_id="all", scopes=Scope))


def bearer(key: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying an API key."""
    return (("authorization", f"Bearer {key}"),)
