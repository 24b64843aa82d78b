"""Who a caller is: an API key maps to a principal (tenant, key id) and its scopes; the scope
each gateway method needs.

Keys file (PONDER_GATEWAY_API_KEYS_FILE, a mounted Secret): one entry per line, either a JSON
object (JSON lines)

    {"key_id": "ci-bot", "sha256": "<hex digest of the key>", "tenant": "team-a",
     "scopes": ["workflows.run", "workflows.read"]}

or, as before, a bare SHA-256 hex digest (optionally `name:` before it): such a key belongs to
the tenant `default` with the DEFAULT_SCOPES. `#` starts a comment; blank lines are skipped.
The hashes of PONDER_GATEWAY_API_KEY_HASHES are read the same way as bare digests.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Scope(StrEnum):
    """What a credential may do (the METHOD_SCOPES table says which method needs which)."""

    WORKFLOWS_RUN = "workflows.run"  # run and create workflows
    WORKFLOWS_READ = "workflows.read"  # get, list and watch the tenant's workflows
    WORKFLOWS_CANCEL = "workflows.cancel"  # cancel the tenant's workflows
    WORKFLOWS_DELETE = "workflows.delete"  # delete the tenant's workflows (no method yet)
    LIBRARY_READ = "library.read"  # get, list and watch the tenant's library documents
    LIBRARY_WRITE = "library.write"  # upload and delete the tenant's library documents
    CACHE_ADMIN = "cache.admin"  # the embedding service's cache methods (with `internal`)
    INTERNAL = "internal"  # the forwarded internal services (when exposed)
    ADMIN = "admin"  # with read / cancel: every tenant's workflows, not only the caller's own


DEFAULT_TENANT = "default"
# What a key of a plain list of hashes may do (what every key could do before scopes).
DEFAULT_SCOPES = frozenset(
    {
        Scope.WORKFLOWS_RUN,
        Scope.WORKFLOWS_READ,
        Scope.WORKFLOWS_CANCEL,
        Scope.WORKFLOWS_DELETE,
        Scope.LIBRARY_READ,
        Scope.LIBRARY_WRITE,
    }
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

_WORKFLOW = "/ponder.workflow.v1.WorkflowService/"
_RESEARCH = "/ponder.research.v1.ResearchService/"
_REFLECTION = "/ponder.reflection.v1.ReflectionService/"
_EMBEDDING = "/ponder.embedding.v1.EmbeddingService/"
_LIBRARY = "/ponder.library.v1.LibraryService/"

# Every method the gateway serves (its own and the forwarded ones) and the scopes it needs,
# all of them. A method missing here is refused (PERMISSION_DENIED): a new method must be
# added on purpose. Health and server reflection are open (service.OPEN_SERVICES).
METHOD_SCOPES: Mapping[str, frozenset[Scope]] = {
    f"{_WORKFLOW}RunReflectionWorkflow": frozenset({Scope.WORKFLOWS_RUN}),
    f"{_WORKFLOW}RunResearchWorkflow": frozenset({Scope.WORKFLOWS_RUN}),
    f"{_WORKFLOW}RunWorkflow": frozenset({Scope.WORKFLOWS_RUN}),
    f"{_WORKFLOW}CreateWorkflow": frozenset({Scope.WORKFLOWS_RUN}),
    f"{_WORKFLOW}GetWorkflow": frozenset({Scope.WORKFLOWS_READ}),
    f"{_WORKFLOW}ListWorkflows": frozenset({Scope.WORKFLOWS_READ}),
    f"{_WORKFLOW}WatchWorkflow": frozenset({Scope.WORKFLOWS_READ}),
    f"{_WORKFLOW}CancelWorkflow": frozenset({Scope.WORKFLOWS_CANCEL}),
    # The caller's tenant's libraries (forwarded to research with the tenant).
    f"{_LIBRARY}CreateDocument": frozenset({Scope.LIBRARY_WRITE}),
    f"{_LIBRARY}DeleteDocument": frozenset({Scope.LIBRARY_WRITE}),
    f"{_LIBRARY}GetDocument": frozenset({Scope.LIBRARY_READ}),
    f"{_LIBRARY}ListDocuments": frozenset({Scope.LIBRARY_READ}),
    f"{_LIBRARY}WatchDocument": frozenset({Scope.LIBRARY_READ}),
    # Forwarded only with PONDER_GATEWAY_EXPOSE_INTERNAL_SERVICES=true.
    f"{_RESEARCH}SearchSources": frozenset({Scope.INTERNAL}),
    f"{_RESEARCH}GetLibrary": frozenset({Scope.INTERNAL}),
    f"{_REFLECTION}Reflect": frozenset({Scope.INTERNAL}),
    f"{_REFLECTION}StreamReflect": frozenset({Scope.INTERNAL}),
    f"{_EMBEDDING}EmbedTexts": frozenset({Scope.INTERNAL}),
    f"{_EMBEDDING}RankDocuments": frozenset({Scope.INTERNAL}),
    f"{_EMBEDDING}LookupCache": frozenset({Scope.INTERNAL, Scope.CACHE_ADMIN}),
    f"{_EMBEDDING}StoreCache": frozenset({Scope.INTERNAL, Scope.CACHE_ADMIN}),
    f"{_EMBEDDING}InvalidateCache": frozenset({Scope.INTERNAL, Scope.CACHE_ADMIN}),
    f"{_EMBEDDING}GetCacheStats": frozenset({Scope.INTERNAL, Scope.CACHE_ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its tenant, its key id ("anonymous" without a key), its
    scopes, and the identity its per-key rate limit is kept under."""

    tenant: str
    key_id: str
    scopes: frozenset[Scope]
    caller: str = ""
    anonymous: bool = False

    @property
    def admin(self) -> bool:
        """Sees every tenant's workflows."""
        return Scope.ADMIN in self.scopes

    def missing(self, method: str) -> frozenset[Scope] | None:
        """The scopes `method` needs that this principal lacks (empty: allowed); None for a
        method the table does not know (refused)."""
        needed = METHOD_SCOPES.get(method)
        return None if needed is None else needed - self.scopes

    def owns(self, tenant: str) -> bool:
        """Whether a workflow of `tenant` ("" for records older than tenants: the default
        tenant's) is visible to this principal."""
        return self.admin or (tenant or DEFAULT_TENANT) == self.tenant


# The principal of the call being served, set by the access guard before the handler runs
# (the handler runs in the same task, REST calls included).
_CURRENT: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "ponder_principal", default=None
)
# Without a guard (a servicer driven directly), the caller is the default tenant, no admin.
_UNGUARDED = Principal(DEFAULT_TENANT, "unguarded", DEFAULT_SCOPES)


def set_current(principal: Principal) -> None:
    """Record the principal of the call being served."""
    _CURRENT.set(principal)


def current() -> Principal:
    """The principal of the call being served (the default tenant without a guard)."""
    return _CURRENT.get() or _UNGUARDED


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyEntry(BaseModel):
    """One line of the keys file in its JSON form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=_NAME.pattern)
    sha256: str = Field(pattern=_HEX64.pattern)
    tenant: str = Field(DEFAULT_TENANT, pattern=_NAME.pattern)
    scopes: frozenset[Scope] = DEFAULT_SCOPES


class KeysFileError(ValueError):
    """A line of the keys file is malformed; the message names the line (never a key)."""


def _plain(entry: str) -> KeyEntry:
    name, _, digest = entry.rpartition(":")
    digest = digest.strip().lower()
    if not _HEX64.match(digest):
        raise ValueError("not a SHA-256 hex digest")
    key_id = name.strip() if name.strip() and _NAME.match(name.strip()) else digest[:12]
    return KeyEntry(key_id=key_id, sha256=digest, tenant=DEFAULT_TENANT, scopes=DEFAULT_SCOPES)


def read_keys(path: Path | None, inline: Iterable[str]) -> dict[str, KeyEntry]:
    """Key entries by hash, from settings (bare digests) and the keys file; raises
    KeysFileError naming the bad line."""
    entries: dict[str, KeyEntry] = {}
    for digest in inline:
        if digest.strip():
            entry = _plain(digest)
            entries[entry.sha256] = entry
    if path is None:
        return entries
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("{"):
                entry = KeyEntry.model_validate(json.loads(line))
            else:
                entry = _plain(line.split("#", 1)[0])
        except (ValueError, ValidationError) as exc:
            reason = (
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                if isinstance(exc, ValidationError)
                else str(exc).splitlines()[0]
            )
            raise KeysFileError(f"{path}:{number}: {reason}") from None
        if entry.sha256 in entries:
            raise KeysFileError(f"{path}:{number}: this key is listed twice")
        entries[entry.sha256] = entry
    return entries
